"""SQL of the weekly-cap conflicts of get-schedule-data-batch: the unit-spending sessions, in whole
weeks, of the candidates' authorized services that carry a weekly cap (docs/API.md)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, and_, bindparam, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import AuthorizationService, Session
from therapy_scheduler.models.base import UTCDateTime
from therapy_scheduler.schedule.queries.conflicts import Statement

# id, client_id, authorization_id, service_code, start_time, end_time, units, the service's
# weekly_cap_units and weekly_cap_minutes.
CappedSession: TypeAlias = Row[
    uuid.UUID, uuid.UUID, uuid.UUID, str, datetime, datetime, int, int | None, int | None
]  # fmt: skip


async def capped_sessions(
    conn: AsyncConnection,
    candidates: Statement,
    candidate_values: dict[str, Any],
    lower: datetime,
    upper: datetime,
) -> Sequence[CappedSession]:
    """Unit-spending sessions starting in `[lower, upper)` of every (authorization, service) of the
    candidates that has a weekly cap, with the cap, ordered by start and id."""
    statement = _capped_sessions_statement(candidates)
    return (
        await conn.execute(
            statement, {**candidate_values, "week_lower": lower, "week_upper": upper}
        )
    ).all()


@functools.lru_cache(maxsize=64)
def _capped_sessions_statement(candidates: Statement) -> Statement:
    """Built once per candidates statement (see `_authorization_problems_statement`)."""
    c = candidates.cte("cap_candidates")
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
            Session.start_time,
            Session.end_time,
            Session.units,
            capped.c.weekly_cap_units,
            capped.c.weekly_cap_minutes,
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
        .order_by(Session.start_time, Session.id)
    )
