"""The purge's statements: holds past their expiry, hold records old enough to delete, expired
idempotency records. Rows are taken with SKIP LOCKED, in id order, a batch at a time."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import Hold, HoldOccurrence, IdempotencyRecord


async def lock_expired_holds(
    conn: AsyncConnection, *, now: datetime, limit: int
) -> list[uuid.UUID]:
    """Ids of `active` holds expired at `now` (at most `limit`), locked, skipping locked ones."""
    return list(
        (
            await conn.execute(
                select(Hold.id)
                .where(Hold.status == "active", Hold.expires_at <= now)
                .order_by(Hold.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )


async def expired_ranges(
    conn: AsyncConnection, *, hold_ids: list[uuid.UUID], now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID, datetime, datetime]]:
    """(organization, therapist, start, end) of the still-future occurrences of these holds."""
    rows = await conn.execute(
        select(
            HoldOccurrence.organization_id,
            HoldOccurrence.therapist_id,
            HoldOccurrence.start_time,
            HoldOccurrence.end_time,
        ).where(HoldOccurrence.hold_id.in_(hold_ids), HoldOccurrence.end_time > now)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def expire_holds(conn: AsyncConnection, *, hold_ids: list[uuid.UUID]) -> None:
    """These holds become `expired` and their occurrences stop being active."""
    await conn.execute(
        update(HoldOccurrence)
        .where(HoldOccurrence.hold_id.in_(hold_ids), HoldOccurrence.active.is_(True))
        .values(active=False)
    )
    await conn.execute(update(Hold).where(Hold.id.in_(hold_ids)).values(status="expired"))


async def hold_people(
    conn: AsyncConnection, *, hold_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(id, organization, therapist, client) of these holds, in id order (for their events)."""
    rows = await conn.execute(
        select(Hold.id, Hold.organization_id, Hold.therapist_id, Hold.client_id)
        .where(Hold.id.in_(hold_ids))
        .order_by(Hold.id)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def lock_old_holds(conn: AsyncConnection, *, cutoff: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of holds expired or closed by `cutoff`, except a confirmed series' hold (at most `limit`),
    locked, skipping locked ones."""
    return list(
        (
            await conn.execute(
                select(Hold.id)
                .where(
                    or_(
                        and_(Hold.status.in_(("active", "expired")), Hold.expires_at <= cutoff),
                        and_(
                            Hold.status.in_(("confirmed", "released")),
                            Hold.closed_at <= cutoff,
                            # A confirmed series' hold is its record: the recurrence that
                            # calendar feeds turn into an RRULE. It stays.
                            Hold.series_id.is_(None),
                        ),
                    )
                )
                .order_by(Hold.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )


async def hold_organizations(conn: AsyncConnection, *, hold_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The organizations these holds belong to."""
    rows = await conn.execute(select(Hold.organization_id).where(Hold.id.in_(hold_ids)).distinct())
    return set(rows.scalars())


async def delete_holds(conn: AsyncConnection, *, hold_ids: list[uuid.UUID]) -> None:
    """These holds and their occurrences are deleted."""
    await conn.execute(delete(HoldOccurrence).where(HoldOccurrence.hold_id.in_(hold_ids)))
    await conn.execute(delete(Hold).where(Hold.id.in_(hold_ids)))


async def delete_expired_idempotency(conn: AsyncConnection, *, now: datetime) -> int:
    """Idempotency records expired at `now` are deleted; returns how many."""
    gone = await conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    return int(gone.rowcount or 0)
