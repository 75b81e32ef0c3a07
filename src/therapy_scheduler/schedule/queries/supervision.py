"""SQL of the supervision conflict of get-schedule-data-batch: supervising sessions that no longer lie
within a session of the code they supervise (docs/BOOKING.md "Supervision overlap")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, and_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import MAX_SESSION_LENGTH, Session

_SUPERVISED = Session.__table__.alias("supervised")

# id, therapist_id, client_id, supervises
AloneSupervision: TypeAlias = Row[uuid.UUID, uuid.UUID, uuid.UUID, str | None]

# Through ix_sessions_supervises: the supervising sessions starting in the range (few), each
# looked up among its client's sessions (ix_sessions_client_start).
_ALONE = (
    select(Session.id, Session.therapist_id, Session.client_id, Session.supervises)
    .where(
        Session.supervises.is_not(None),
        Session.start_time >= bindparam("first"),
        Session.start_time <= bindparam("last"),
        Session.status != "cancelled",
        ~exists().where(
            and_(
                _SUPERVISED.c.client_id == Session.client_id,
                _SUPERVISED.c.service_code == Session.supervises,
                _SUPERVISED.c.supervises.is_(None),
                _SUPERVISED.c.status != "cancelled",
                _SUPERVISED.c.start_time <= Session.start_time,
                _SUPERVISED.c.start_time > bindparam("floor"),  # index lower bound (implied)
                _SUPERVISED.c.end_time >= Session.end_time,
            )
        ),
    )
    .order_by(Session.start_time, Session.id)
)


async def supervision_alone(
    conn: AsyncConnection, first: datetime, last: datetime
) -> list[AloneSupervision]:
    """Non-cancelled supervising sessions starting in `[first, last]` that no non-cancelled
    ordinary session of their client and supervised code contains (of every organization: the
    caller keeps the ones it was asked about, by id)."""
    params: dict[str, Any] = {"first": first, "last": last, "floor": first - MAX_SESSION_LENGTH}
    return list((await conn.execute(_ALONE, params)).all())
