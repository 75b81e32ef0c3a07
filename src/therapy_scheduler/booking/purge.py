"""Housekeeping of holds and idempotency records, run periodically from the app's lifespan.

Correctness never depends on it: an expired hold stops blocking at `expires_at` in every query. The
purge only marks such holds `expired` (counted in the hold-expiry metric), deletes hold records 24 hours
after they expired or were closed (so a late confirm gets 410 for a day, then 404), and deletes expired
idempotency records.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update

from therapy_scheduler.booking.rules.locks import try_lock_job
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import Hold, HoldOccurrence, IdempotencyRecord

log = logging.getLogger("therapy_scheduler.purge")
KEEP_CLOSED = timedelta(hours=24)
BATCH = 500


@dataclass(frozen=True)
class PurgeResult:
    expired: int
    deleted_holds: int
    deleted_idempotency: int


async def purge_once(db: Database, now: datetime) -> PurgeResult:
    """One pass; safe to run from several processes at once (one of them does the work)."""
    async with db.write() as conn:
        if not await try_lock_job(conn, "purge"):
            return PurgeResult(0, 0, 0)
        # SKIP LOCKED: never wait on a hold that a booking transaction is working on.
        expired_ids = list(
            (
                await conn.execute(
                    select(Hold.id)
                    .where(Hold.status == "active", Hold.expires_at <= now)
                    .order_by(Hold.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if expired_ids:
            await conn.execute(
                update(HoldOccurrence)
                .where(HoldOccurrence.hold_id.in_(expired_ids), HoldOccurrence.active.is_(True))
                .values(active=False)
            )
            await conn.execute(
                update(Hold).where(Hold.id.in_(expired_ids)).values(status="expired")
            )
        cutoff = now - KEEP_CLOSED
        old_ids = list(
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
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if old_ids:
            await conn.execute(delete(HoldOccurrence).where(HoldOccurrence.hold_id.in_(old_ids)))
            await conn.execute(delete(Hold).where(Hold.id.in_(old_ids)))
        gone = await conn.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        )
    return PurgeResult(len(expired_ids), len(old_ids), int(gone.rowcount or 0))


async def run_purge_loop(db: Database, metrics: Metrics, interval_seconds: float) -> None:
    """Purge every `interval_seconds` until cancelled; a failed pass is logged and retried later."""
    while True:
        try:
            result = await purge_once(db, utcnow())
            if result.expired:
                metrics.hold_expiries.inc(result.expired)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next pass retries; requests never depend on this
            log.warning("hold purge failed: %s", type(exc).__name__)
        await asyncio.sleep(interval_seconds)
