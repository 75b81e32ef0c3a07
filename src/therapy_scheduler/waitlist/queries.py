"""The waitlist's SQL (SQLAlchemy Core): entries, offers and the freed-slot outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import (
    Caseload,
    Client,
    FreedSlot,
    Hold,
    Organization,
    Therapist,
    WaitlistEntry,
    WaitlistOffer,
)

E = WaitlistEntry
O = WaitlistOffer  # noqa: E741

_ENTRY_COLUMNS = (
    E.id,
    E.organization_id,
    E.client_id,
    E.service_code,
    E.duration_minutes,
    E.therapist_ids,
    E.windows,
    E.time_zone,
    E.earliest_date,
    E.latest_date,
    E.location_type,
    E.priority,
    E.note,
    E.status,
    E.created_by,
    E.created_at,
    E.updated_at,
)


def _open_offer_id() -> Any:
    return (
        select(O.id)
        .where(O.entry_id == E.id, O.status == "open")
        .limit(1)
        .scalar_subquery()
        .label("open_offer_id")
    )


async def client_active(
    conn: AsyncConnection, organization_id: uuid.UUID, client_id: uuid.UUID
) -> bool:
    row = (
        await conn.execute(
            select(Client.status, Client.archived_at).where(
                Client.id == client_id, Client.organization_id == organization_id
            )
        )
    ).first()
    return row is not None and row.status == "active" and row.archived_at is None


async def therapist_in(
    conn: AsyncConnection, organization_id: uuid.UUID, therapist_id: uuid.UUID
) -> bool:
    found = (
        await conn.execute(
            select(Therapist.id).where(
                Therapist.id == therapist_id, Therapist.organization_id == organization_id
            )
        )
    ).first()
    return found is not None


async def insert_entry(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(E).values(**values))


async def entry(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    entry_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Any:
    """A visible (not removed) entry with its open offer's id, if any."""
    statement = select(*_ENTRY_COLUMNS, _open_offer_id()).where(
        E.id == entry_id, E.organization_id == organization_id, E.status != "removed"
    )
    if for_update:
        statement = statement.with_for_update(of=E)
    return (await conn.execute(statement)).first()


async def entries_page(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    *,
    status: str,
    client_id: uuid.UUID | None,
    service_code: str | None,
    after: tuple[int, datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Entries in offer order (priority high first, then waiting longest, then id)."""
    statement = select(*_ENTRY_COLUMNS, _open_offer_id()).where(
        E.organization_id == organization_id, E.status == status
    )
    if client_id is not None:
        statement = statement.where(E.client_id == client_id)
    if service_code is not None:
        statement = statement.where(E.service_code == service_code)
    if after is not None:
        priority, created_at, last_id = after
        statement = statement.where(
            or_(
                E.priority < priority,
                and_(E.priority == priority, E.created_at > created_at),
                and_(E.priority == priority, E.created_at == created_at, E.id > last_id),
            )
        )
    statement = statement.order_by(E.priority.desc(), E.created_at, E.id).limit(limit)
    return list((await conn.execute(statement)).all())


async def update_entry(conn: AsyncConnection, entry_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(update(E).where(E.id == entry_id).values(**values))


async def waiting_count(conn: AsyncConnection, organization_id: uuid.UUID) -> int:
    return int(
        (
            await conn.execute(
                select(func.count())
                .select_from(E)
                .where(E.organization_id == organization_id, E.status == "waiting")
            )
        ).scalar_one()
    )


async def anyone_waiting(conn: AsyncConnection, organization_id: uuid.UUID) -> bool:
    return bool(
        (
            await conn.execute(
                select(exists().where(E.organization_id == organization_id, E.status == "waiting"))
            )
        ).scalar_one()
    )


async def candidates(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> list[Any]:
    """Waiting entries without an open offer that were not already offered (and let go) time of
    this therapist overlapping [start, end), each with whether the client is on the therapist's
    caseload, in offer order. The therapist preference and the windows are checked in Python."""
    on_caseload = (
        exists()
        .where(Caseload.client_id == E.client_id, Caseload.therapist_id == therapist_id)
        .label("on_caseload")
    )
    offered_before = exists().where(
        O.entry_id == E.id,
        O.therapist_id == therapist_id,
        O.start_time < end,
        O.end_time > start,
    )
    has_open = exists().where(O.entry_id == E.id, O.status == "open")
    statement = (
        select(*_ENTRY_COLUMNS, on_caseload)
        .where(
            E.organization_id == organization_id,
            E.status == "waiting",
            ~has_open,
            ~offered_before,
        )
        .order_by(E.priority.desc(), E.created_at, E.id)
    )
    return list((await conn.execute(statement)).all())


async def organization(conn: AsyncConnection, organization_id: uuid.UUID) -> Any:
    return (
        await conn.execute(
            select(Organization.id, Organization.time_zone, Organization.settings).where(
                Organization.id == organization_id
            )
        )
    ).first()


# Offers


async def insert_offer(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(O).values(**values))


_OFFER_COLUMNS = (
    O.id,
    O.organization_id,
    O.entry_id,
    O.hold_id,
    O.hold_key,
    O.therapist_id,
    O.client_id,
    O.start_time,
    O.end_time,
    O.expires_at,
    O.status,
    O.session_id,
    O.created_at,
    O.closed_at,
)


async def offer(conn: AsyncConnection, organization_id: uuid.UUID, offer_id: uuid.UUID) -> Any:
    return (
        await conn.execute(
            select(*_OFFER_COLUMNS).where(O.id == offer_id, O.organization_id == organization_id)
        )
    ).first()


async def close_offer(
    conn: AsyncConnection,
    offer_id: uuid.UUID,
    *,
    status: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
) -> bool:
    """Move an open offer to `status`; False when it was no longer open (the other outcome won)."""
    result = await conn.execute(
        update(O)
        .where(O.id == offer_id, O.status == "open")
        .values(status=status, closed_at=now, session_id=session_id)
    )
    return bool(result.rowcount)


async def lapsed_offers(conn: AsyncConnection, *, now: datetime, limit: int) -> list[Any]:
    """Open offers past their expiry, or whose hold is no longer active (released elsewhere,
    purged), of any organization, oldest first."""
    return list(
        (
            await conn.execute(
                select(*_OFFER_COLUMNS)
                .select_from(O.__table__.outerjoin(Hold, Hold.id == O.hold_id))
                .where(
                    O.status == "open",
                    or_(O.expires_at <= now, Hold.id.is_(None), Hold.status != "active"),
                )
                .order_by(O.expires_at, O.id)
                .limit(limit)
            )
        ).all()
    )


async def open_offers(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    *,
    start: datetime | None,
    end: datetime | None,
    therapist_id: uuid.UUID | None,
    limit: int,
) -> list[Any]:
    statement = select(*_OFFER_COLUMNS).where(
        O.organization_id == organization_id, O.status == "open"
    )
    if start is not None:
        statement = statement.where(O.end_time > start)
    if end is not None:
        statement = statement.where(O.start_time < end)
    if therapist_id is not None:
        statement = statement.where(O.therapist_id == therapist_id)
    statement = statement.order_by(O.start_time, O.id).limit(limit)
    return list((await conn.execute(statement)).all())


# The freed-slot outbox (written by calendar/freed.py)


async def freed_slot(conn: AsyncConnection, freed_id: uuid.UUID) -> Any:
    return (await conn.execute(select(FreedSlot).where(FreedSlot.id == freed_id))).first()


async def pending_freed(conn: AsyncConnection, *, limit: int) -> list[uuid.UUID]:
    return list(
        (
            await conn.execute(
                select(FreedSlot.id)
                .where(FreedSlot.processed_at.is_(None))
                .order_by(FreedSlot.created_at, FreedSlot.id)
                .limit(limit)
            )
        ).scalars()
    )


async def mark_processed(
    conn: AsyncConnection, freed_id: uuid.UUID, *, now: datetime, offer_id: uuid.UUID | None
) -> bool:
    result = await conn.execute(
        update(FreedSlot)
        .where(FreedSlot.id == freed_id, FreedSlot.processed_at.is_(None))
        .values(processed_at=now, offer_id=offer_id)
    )
    return bool(result.rowcount)


async def count_attempt(conn: AsyncConnection, freed_id: uuid.UUID) -> int:
    await conn.execute(
        update(FreedSlot).where(FreedSlot.id == freed_id).values(attempts=FreedSlot.attempts + 1)
    )
    return int(
        (
            await conn.execute(select(FreedSlot.attempts).where(FreedSlot.id == freed_id))
        ).scalar_one()
    )


async def delete_matched_freed(conn: AsyncConnection, *, before: datetime) -> int:
    """Outbox rows matched before `before` are deleted; returns how many."""
    gone = await conn.execute(delete(FreedSlot).where(FreedSlot.processed_at < before))
    return int(gone.rowcount or 0)
