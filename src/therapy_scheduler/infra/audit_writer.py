"""A small in-process buffer that appends audit events outside the request's transaction.

Used for `phi.read` events of the read endpoints: those run on a read-only transaction (possibly on a
read replica), and one INSERT per read in the request path would put a write on the hot read path.
Instead the request appends an entry to a list (no I/O) and a background task writes the buffer in one
transaction every `flush_seconds`, or as soon as `max_batch` entries wait; shutdown flushes the rest.

Trade-off: an entry lives only in memory for up to `flush_seconds` (1 s by default). If the process is
killed (SIGKILL, power loss) in that window, those read events are lost; a graceful shutdown loses none.
Writes (bookings, cancellations, feed changes) never go through here: they are audited in their own
transaction by `kit.audit.record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque

from therapy_scheduler.infra.audit_log import AuditEntry, append_entries
from therapy_scheduler.infra.db import Database

log = logging.getLogger("therapy_scheduler.audit")


class AuditWriter:
    def __init__(
        self,
        database: Database,
        *,
        flush_seconds: float = 1.0,
        max_batch: int = 200,
        max_pending: int = 100_000,
        shutdown_seconds: float = 10.0,
    ) -> None:
        self._database = database
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._shutdown_seconds = shutdown_seconds
        self._pending: deque[AuditEntry] = deque()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, entry: AuditEntry) -> None:
        """Queue one entry; never blocks and never does I/O."""
        if len(self._pending) >= self._max_pending:
            # The database has been unreachable for long: keep memory bounded and say so loudly.
            self._pending.popleft()
            self.dropped += 1
            log.error(
                "audit buffer full: dropped the oldest event (total dropped %d)", self.dropped
            )
        self._pending.append(entry)
        if len(self._pending) >= self._max_batch:
            self._wake.set()
        self._ensure_running()

    async def flush(self) -> None:
        """Write every entry queued when it is called (in batches of `max_batch`, one transaction
        each). Entries queued meanwhile wait for the next flush: a writer that kept going while
        requests kept adding would write a handful of entries per transaction under load, at the
        price of a transaction each (docs/DECISIONS.md, "The hot read path")."""
        async with self._lock:
            # Counted after taking the lock: what a flush running before this one left is written
            # too. Entries dropped from the front (a full buffer) only make the count generous.
            left = len(self._pending)
            while left > 0 and self._pending:
                size = min(self._max_batch, left, len(self._pending))
                batch = [self._pending[i] for i in range(size)]
                async with self._database.write() as conn:
                    await append_entries(conn, batch)
                for _ in batch:
                    self._pending.popleft()
                left -= size

    async def close(self) -> None:
        """Stop the background task and write what is left (called on shutdown).

        The task is asked to stop and allowed to finish the batch it is writing: cancelling it in the
        middle of a transaction could lose the batch, write it twice (cancelled during COMMIT) or, on
        SQLite, leave the write lock held so that the final flush fails. Only a task still busy after
        `shutdown_seconds` (a database that hangs) is cancelled."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            _, busy = await asyncio.wait({task}, timeout=self._shutdown_seconds)
            for hung in busy:
                hung.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hung
        try:
            await self.flush()
        except Exception as exc:
            log.error(
                "audit flush on shutdown failed, %d events lost: %s",
                len(self._pending),
                type(exc).__name__,
            )

    def _ensure_running(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        # An empty context: started by whichever request first buffers an event, the writer is no
        # part of that request, and its writes are no one's (no caller's write position, infra/db.py).
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="audit-writer", context=contextvars.Context()
        )

    async def _run(self) -> None:
        while not self._closed:
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation
            # that arrives as the wake-up does, and the writer would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                # Entries stay queued and are retried on the next tick.
                log.warning(
                    "audit flush failed, %d events kept for retry: %s",
                    len(self._pending),
                    type(exc).__name__,
                )
