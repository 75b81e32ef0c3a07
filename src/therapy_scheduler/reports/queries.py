"""SQL of the supervision report (SQLAlchemy Core): the organization's RBTs, their completed 97153
sessions starting in a range, and the completed 97155 sessions of supervisors around it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import MAX_SESSION_LENGTH, Session, Therapist

DIRECT_CODE = "97153"
SUPERVISION_CODE = "97155"


async def rbts(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> list[Row[uuid.UUID, str, str]]:
    """(id, full_name, credential) of the organization's RBTs that are active or delivered a
    completed 97153 starting in `[start, end)`; only `therapist_id` when given. By name, id."""
    delivered = (
        select(Session.id)
        .where(
            Session.therapist_id == Therapist.id,
            Session.service_code == DIRECT_CODE,
            Session.status == "completed",
            Session.start_time >= start,
            Session.start_time < end,
        )
        .exists()
    )
    conditions = [
        Therapist.organization_id == organization_id,
        func.upper(Therapist.credential) == "RBT",
        or_(and_(Therapist.status == "active", Therapist.archived_at.is_(None)), delivered),
    ]
    if therapist_id is not None:
        conditions.append(Therapist.id == therapist_id)
    query = (
        select(Therapist.id, Therapist.full_name, Therapist.credential)
        .where(*conditions)
        .order_by(Therapist.full_name, Therapist.id)
    )
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class Worked:
    """A completed session: who, for whom, when."""

    id: uuid.UUID
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    start: datetime
    end: datetime


async def direct_sessions(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
) -> list[Worked]:
    """Completed 97153 sessions of these therapists starting in `[start, end)`."""
    if not therapist_ids:
        return []
    rows = await conn.execute(
        select(
            Session.id,
            Session.therapist_id,
            Session.client_id,
            Session.start_time,
            Session.end_time,
        )
        .where(
            Session.organization_id == organization_id,
            Session.therapist_id.in_(therapist_ids),
            Session.service_code == DIRECT_CODE,
            Session.status == "completed",
            Session.start_time >= start,
            Session.start_time < end,
        )
        .order_by(Session.start_time, Session.id)
    )
    return [Worked(*r) for r in rows]


async def supervision_sessions(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    client_ids: list[uuid.UUID],
    credentials: tuple[str, ...],
    lower: datetime,
    upper: datetime,
) -> list[Worked]:
    """Completed 97155 sessions of these clients, by a therapist holding one of `credentials`,
    overlapping `[lower, upper)`."""
    if not client_ids:
        return []
    rows = await conn.execute(
        select(
            Session.id,
            Session.therapist_id,
            Session.client_id,
            Session.start_time,
            Session.end_time,
        )
        .join(Therapist, Therapist.id == Session.therapist_id)
        .where(
            Session.organization_id == organization_id,
            Session.client_id.in_(client_ids),
            Session.service_code == SUPERVISION_CODE,
            Session.status == "completed",
            Session.start_time < upper,
            Session.end_time > lower,
            Session.start_time > lower - MAX_SESSION_LENGTH,  # index lower bound (implied)
            func.upper(Therapist.credential).in_([c.upper() for c in credentials]),
        )
        .order_by(Session.start_time, Session.id)
    )
    return [Worked(*r) for r in rows]


async def therapist_exists(
    conn: AsyncConnection, *, organization_id: uuid.UUID, therapist_id: uuid.UUID
) -> bool:
    query = select(Therapist.id).where(
        Therapist.id == therapist_id, Therapist.organization_id == organization_id
    )
    return (await conn.execute(query)).first() is not None
