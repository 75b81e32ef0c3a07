"""What the supervision rule reads besides the busy time: the supervisor's credential, and the
supervising sessions that lie within a session (docs/BOOKING.md "Supervision overlap")."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import Session, Therapist

_CREDENTIAL = select(Therapist.credential).where(Therapist.id == bindparam("therapist_id"))


async def therapist_credential(conn: AsyncConnection, therapist_id: uuid.UUID) -> str | None:
    return (await conn.execute(_CREDENTIAL, {"therapist_id": therapist_id})).scalar()


_WITHIN = (
    select(Session.id)
    .where(
        Session.client_id == bindparam("client_id"),
        Session.supervises == bindparam("code"),
        Session.status != "cancelled",
        Session.start_time >= bindparam("start"),
        Session.end_time <= bindparam("end"),
    )
    .order_by(Session.start_time, Session.id)
)


async def supervising_within(
    conn: AsyncConnection, *, client_id: uuid.UUID, code: str, start: datetime, end: datetime
) -> list[uuid.UUID]:
    """Non-cancelled sessions of the client that supervise `code` and lie within `[start, end)`."""
    params = {"client_id": client_id, "code": code, "start": start, "end": end}
    return list((await conn.execute(_WITHIN, params)).scalars())
