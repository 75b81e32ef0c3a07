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

from therapy_scheduler.booking import queries
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.infra import changes, outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.jobs import try_lock_job
from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.time import utcnow

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
        expired_ids = await queries.lock_expired_holds(conn, now=now, limit=BATCH)
        old_ids = await queries.lock_old_holds(conn, cutoff=now - KEEP_CLOSED, limit=BATCH)
        if expired_ids or old_ids:
            # Their organizations' data change: new versions, new ETags (infra/changes.py).
            for organization_id in await queries.hold_organizations(
                conn, hold_ids=[*expired_ids, *old_ids]
            ):
                changes.touch(conn, organization_id)
        freed = []
        if expired_ids:
            # The expired holds' slots go to the waitlist after COMMIT (docs/WAITLIST.md).
            for organization_id, therapist_id, start, end in await queries.expired_ranges(
                conn, hold_ids=expired_ids, now=now
            ):
                freed.append(
                    await freed_slots.record_freed(
                        conn,
                        organization_id=organization_id,
                        therapist_id=therapist_id,
                        start=start,
                        end=end,
                        cause="hold_expired",
                        now=now,
                    )
                )
            await queries.expire_holds(conn, hold_ids=expired_ids)
            for hold_id, organization_id, therapist_id, client_id in await queries.hold_people(
                conn, hold_ids=expired_ids
            ):
                await outbox.emit_hold_event(
                    conn,
                    organization_id=organization_id,
                    event_type="hold.expired",
                    hold_id=hold_id,
                    therapist_id=therapist_id,
                    client_id=client_id,
                )
        if old_ids:
            await queries.delete_holds(conn, hold_ids=old_ids)
        gone = await queries.delete_expired_idempotency(conn, now=now)
    freed_slots.kick(db, freed)
    return PurgeResult(len(expired_ids), len(old_ids), gone)


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
