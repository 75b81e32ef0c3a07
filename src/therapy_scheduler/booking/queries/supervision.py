"""What the supervision rule reads besides the busy time: the supervisor's credential, the supervisions
(sessions and live held slots) that lie within a time range, and whether a live ordinary session or
held slot contains a supervision (docs/BOOKING.md "Supervision overlap")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import HoldOccurrence, Session, Therapist

_CREDENTIAL = select(Therapist.credential).where(Therapist.id == bindparam("therapist_id"))


async def therapist_credential(conn: AsyncConnection, therapist_id: uuid.UUID) -> str | None:
    return (await conn.execute(_CREDENTIAL, {"therapist_id": therapist_id})).scalar()


@dataclass(frozen=True)
class Supervising:
    """A supervision lying within a range: a session (`id` the session's) or a live held slot (`id`
    the hold's, as the `hold.*` webhooks name it)."""

    kind: str  # "session" | "hold"
    id: uuid.UUID
    start: datetime
    end: datetime


# Holds stop counting at `expires_at` whether or not the purge has marked them (booking/purge.py).
_LIVE_HELD = (HoldOccurrence.active.is_(True), HoldOccurrence.expires_at > bindparam("now"))

_WITHIN = union_all(
    select(literal("session"), Session.id, Session.start_time, Session.end_time).where(
        Session.client_id == bindparam("client_id"),
        Session.supervises == bindparam("code"),
        Session.status != "cancelled",
        Session.start_time >= bindparam("start"),
        Session.end_time <= bindparam("end"),
    ),
    select(
        literal("hold"),
        HoldOccurrence.hold_id,
        HoldOccurrence.start_time,
        HoldOccurrence.end_time,
    ).where(
        HoldOccurrence.client_id == bindparam("client_id"),
        HoldOccurrence.supervises == bindparam("code"),
        *_LIVE_HELD,
        HoldOccurrence.start_time >= bindparam("start"),
        HoldOccurrence.end_time <= bindparam("end"),
    ),
)


async def supervising_within(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    code: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[Supervising]:
    """Non-cancelled sessions and live held slots of the client that supervise `code` and lie
    within `[start, end)`, by start."""
    params = {"client_id": client_id, "code": code, "start": start, "end": end, "now": now}
    rows = (await conn.execute(_WITHIN, params)).all()
    found = [Supervising(str(r[0]), r[1], r[2], r[3]) for r in rows]
    return sorted(found, key=lambda s: (s.start, s.kind, str(s.id)))


_CONTAINERS = union_all(
    select(Session.id).where(
        Session.client_id == bindparam("client_id"),
        Session.service_code == bindparam("code"),
        Session.supervises.is_(None),
        Session.status != "cancelled",
        Session.start_time <= bindparam("start"),
        Session.end_time >= bindparam("end"),
    ),
    select(HoldOccurrence.id).where(
        HoldOccurrence.client_id == bindparam("client_id"),
        HoldOccurrence.service_code == bindparam("code"),
        HoldOccurrence.supervises.is_(None),
        *_LIVE_HELD,
        HoldOccurrence.start_time <= bindparam("start"),
        HoldOccurrence.end_time >= bindparam("end"),
    ),
)


async def contained(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    code: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> bool:
    """Whether a non-cancelled ordinary session or live ordinary held slot of the client, of service
    `code`, contains `[start, end)`."""
    params = {"client_id": client_id, "code": code, "start": start, "end": end, "now": now}
    return (await conn.execute(_CONTAINERS, params)).first() is not None
