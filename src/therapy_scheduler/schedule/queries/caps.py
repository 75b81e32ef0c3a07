"""SQL of the weekly-cap conflicts of get-schedule-data-batch: the unit-spending sessions, in whole
weeks, of the candidates' authorized services that carry a weekly cap (docs/API.md). Run as a part of
the authorization checks' statement (`queries/conflicts.authorization_checks`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, bindparam, false, literal, or_, select, tuple_

from therapy_scheduler.models import AuthorizationService, Session
from therapy_scheduler.models.base import UTCDateTime


def capped_sessions(c: Any) -> Select[Any]:
    """Unit-spending sessions starting in `[week_lower, week_upper)` (bind parameters) of every
    (authorization, service) of the candidates `c` (a CTE of `conflict_candidates`) that has a
    weekly cap, with the cap, in the columns of `queries/conflicts.AuthorizationCheck` (unordered:
    a part of its statement)."""
    svc = AuthorizationService.__table__.alias("capped_svc")
    capped = (
        select(
            svc.c.authorization_id,
            svc.c.service_code,
            svc.c.weekly_cap_units,
            svc.c.weekly_cap_minutes,
        )
        .where(
            tuple_(svc.c.authorization_id, svc.c.service_code).in_(
                select(c.c.authorization_id, c.c.service_code)
            ),
            or_(svc.c.weekly_cap_units.is_not(None), svc.c.weekly_cap_minutes.is_not(None)),
        )
        .cte("capped")
    )
    return (
        select(
            Session.id,
            Session.client_id,
            Session.authorization_id,
            Session.service_code,
            false().label("uncovered"),
            Session.start_time,
            Session.end_time,
            Session.units,
            capped.c.weekly_cap_units,
            capped.c.weekly_cap_minutes,
            literal("w").label("kind"),
        )
        .join(
            capped,
            and_(
                capped.c.authorization_id == Session.authorization_id,
                capped.c.service_code == Session.service_code,
            ),
        )
        .where(
            Session.consumes_units.is_(True),
            Session.start_time >= bindparam("week_lower", type_=UTCDateTime()),
            Session.start_time < bindparam("week_upper", type_=UTCDateTime()),
        )
    )
