"""The background audit writer stops when its task is cancelled, even when the cancellation arrives
in the same moment as a wake-up (Python 3.11's `asyncio.wait_for` swallows a cancellation whose inner
wait has just finished; a writer that missed it would loop for ever and hang the event loop's close)."""

from __future__ import annotations

import asyncio

from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.infra.db import Database


async def test_a_cancel_that_meets_a_wake_up_still_stops_the_writer(db: Database) -> None:
    for _ in range(50):
        writer = AuditWriter(db, flush_seconds=30)
        writer._ensure_running()
        task = writer._task
        assert task is not None
        await asyncio.sleep(0)  # the writer now waits for its wake-up
        writer._wake.set()
        task.cancel()  # in the same tick as the wake-up
        done, _ = await asyncio.wait({task}, timeout=2)
        assert task in done, "the writer ignored its cancellation"
        assert task.cancelled()
