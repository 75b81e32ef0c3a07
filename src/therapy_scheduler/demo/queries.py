"""SQL of the demo clinic's activity (`activity.py`): who books, what is already there, which
therapists and clients a series can be booked for, and the imported cancellations' records."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, TypedDict

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import (
    Authorization,
    Cancellation,
    Caseload,
    Client,
    FreedSlot,
    Organization,
    Session,
    Therapist,
    User,
)


async def user_by_email(
    conn: AsyncConnection, *, organization_id: uuid.UUID, email: str
) -> Row[uuid.UUID, str, str, dict[str, Any]] | None:
    """(id, role, time_zone, settings) of the organization's user with this e-mail, with the
    organization's zone and settings; None without one."""
    return (
        await conn.execute(
            select(User.id, User.role, Organization.time_zone, Organization.settings)
            .join(Organization, Organization.id == User.organization_id)
            .where(User.email == email, User.organization_id == organization_id)
        )
    ).first()


async def has_series(conn: AsyncConnection, *, organization_id: uuid.UUID) -> bool:
    """Whether the organization has a session that belongs to a series."""
    found = (
        await conn.execute(
            select(Session.id)
            .where(Session.organization_id == organization_id, Session.series_id.is_not(None))
            .limit(1)
        )
    ).first()
    return found is not None


async def unrecorded_cancellations(
    conn: AsyncConnection, *, organization_id: uuid.UUID
) -> list[Row[uuid.UUID, datetime, int]]:
    """(id, start_time, units) of cancelled sessions without a cancellation record, in start order."""
    recorded = select(Cancellation.session_id)
    return list(
        (
            await conn.execute(
                select(Session.id, Session.start_time, Session.units)
                .where(
                    Session.organization_id == organization_id,
                    Session.status == "cancelled",
                    Session.id.not_in(recorded),
                )
                .order_by(Session.start_time, Session.id)
            )
        ).all()
    )


class CancellationRecord(TypedDict):
    """The values of one row `insert_cancellations` writes (every column of `cancellations`)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID
    cancelled_by: uuid.UUID | None
    cancelled_at: datetime
    reason: str | None
    notes: str | None
    policy: str
    late_cancellation: bool
    units_released: int


async def insert_cancellations(conn: AsyncConnection, *, records: list[CancellationRecord]) -> None:
    """Cancellation records, in one statement."""
    await conn.execute(insert(Cancellation), records)


async def caseload_pairs(
    conn: AsyncConnection, *, organization_id: uuid.UUID, first_day: date, last_day: date
) -> list[Row[uuid.UUID, uuid.UUID, str, str]]:
    """(therapist id, client id, therapist's time_zone, credential) of active RBTs and the active
    clients on their caseload with an approved authorization covering `first_day` to `last_day`,
    ordered by therapist and client (a pair once per such authorization)."""
    return list(
        (
            await conn.execute(
                select(Therapist.id, Caseload.client_id, Therapist.time_zone, Therapist.credential)
                .join(Caseload, Caseload.therapist_id == Therapist.id)
                .join(Client, Client.id == Caseload.client_id)
                .join(Authorization, Authorization.client_id == Client.id)
                .where(
                    Therapist.organization_id == organization_id,
                    Therapist.status == "active",
                    Therapist.credential == "RBT",
                    Client.status == "active",
                    Authorization.status == "approved",
                    Authorization.start_date <= first_day,
                    Authorization.end_date >= last_day,
                )
                .order_by(Therapist.id, Caseload.client_id)
            )
        ).all()
    )


async def session_people(
    conn: AsyncConnection, *, session_id: uuid.UUID
) -> Row[uuid.UUID, uuid.UUID, uuid.UUID, datetime]:
    """(id, therapist_id, client_id, start_time) of a session that exists."""
    return (
        await conn.execute(
            select(Session.id, Session.therapist_id, Session.client_id, Session.start_time).where(
                Session.id == session_id
            )
        )
    ).one()


async def therapist_time_zone(conn: AsyncConnection, *, therapist_id: uuid.UUID) -> str:
    """The time zone of a therapist that exists."""
    return (
        await conn.execute(select(Therapist.time_zone).where(Therapist.id == therapist_id))
    ).scalar_one()


async def single_sessions_starting(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    after: datetime,
    before: datetime,
    limit: int,
) -> list[uuid.UUID]:
    """Ids of scheduled sessions outside any series starting strictly between `after` and
    `before`, the earliest `limit` of them in start order."""
    return list(
        (
            await conn.execute(
                select(Session.id)
                .where(
                    Session.organization_id == organization_id,
                    Session.status == "scheduled",
                    Session.series_id.is_(None),
                    Session.start_time > after,
                    Session.start_time < before,
                )
                .order_by(Session.start_time, Session.id)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )


async def supervisable_sessions(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    after: datetime,
    before: datetime,
    limit: int,
) -> list[Row[uuid.UUID, uuid.UUID, datetime, datetime, uuid.UUID | None, str | None]]:
    """(id, client_id, start_time, end_time, location_id, location_type) of scheduled 97153
    sessions of RBTs lasting at least an hour, starting between `after` and `before`, earliest first:
    where the demo books a BCBA's supervision (docs/BOOKING.md "Supervision overlap")."""
    return list(
        (
            await conn.execute(
                select(
                    Session.id,
                    Session.client_id,
                    Session.start_time,
                    Session.end_time,
                    Session.location_id,
                    Session.location_type,
                )
                .join(Therapist, Therapist.id == Session.therapist_id)
                .where(
                    Session.organization_id == organization_id,
                    Session.status == "scheduled",
                    Session.service_code == "97153",
                    Session.start_time > after,
                    Session.start_time < before,
                    Therapist.credential == "RBT",
                )
                .order_by(Session.start_time, Session.id)
                .limit(limit * 10)
            )
        ).all()
    )


async def active_bcbas(
    conn: AsyncConnection, *, organization_id: uuid.UUID
) -> list[Row[uuid.UUID, str]]:
    """(id, time_zone) of the organization's active BCBAs, by id."""
    return list(
        (
            await conn.execute(
                select(Therapist.id, Therapist.time_zone)
                .where(
                    Therapist.organization_id == organization_id,
                    Therapist.status == "active",
                    Therapist.archived_at.is_(None),
                    Therapist.credential == "BCBA",
                )
                .order_by(Therapist.id)
            )
        ).all()
    )


async def close_freed_slots(
    conn: AsyncConnection, *, organization_id: uuid.UUID, now: datetime
) -> None:
    """Mark the slots freed so far as matched: the demo's own history, made before its waitlist."""
    await conn.execute(
        update(FreedSlot)
        .where(FreedSlot.organization_id == organization_id, FreedSlot.processed_at.is_(None))
        .values(processed_at=now)
    )
