"""SQL of the supervision conflict of get-schedule-data-batch: supervising sessions that no longer lie
within a session of the code they supervise (docs/BOOKING.md "Supervision overlap")."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, bindparam, case, exists, null

from therapy_scheduler.models import Session
from therapy_scheduler.models.base import UTCDateTime

_SUPERVISED = Session.__table__.alias("supervised")


def standing_alone() -> ColumnElement[str | None]:
    """A column of a query of sessions (labelled `alone`): the code a supervising session supervises
    when no non-cancelled ordinary session of its client and that code contains it, else NULL.
    Nothing is looked up for an ordinary session; for a supervising one, its client's sessions
    through ix_sessions_client_start, from bind parameter `range_floor` on: a session that
    contains one overlapping the range starts after the range's start less the longest session.
    Meaningful for the range's sessions only (`range_filter`), not for busy time around it."""
    contained = exists().where(
        and_(
            _SUPERVISED.c.client_id == Session.client_id,
            _SUPERVISED.c.service_code == Session.supervises,
            _SUPERVISED.c.supervises.is_(None),
            _SUPERVISED.c.status != "cancelled",
            _SUPERVISED.c.start_time <= Session.start_time,
            _SUPERVISED.c.start_time
            > bindparam("range_floor", type_=UTCDateTime()),  # index lower bound (implied)
            _SUPERVISED.c.end_time >= Session.end_time,
        )
    )
    return case(
        (Session.supervises.is_(None), null()),
        (contained, null()),
        else_=Session.supervises,
    ).label("alone")
