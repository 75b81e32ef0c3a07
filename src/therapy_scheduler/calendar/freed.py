"""Freed slots (docs/WAITLIST.md): the outbox row that every change freeing a therapist's time writes
inside its own transaction, and the hand-off to whoever matches freed slots after the commit.

The writers (cancel, hold release and expiry, reschedule, removed time off) know nothing of the
waitlist: they call `record_freed` in their transaction and, once committed, `settle` (wait a bounded
time for the matching of their rows) or `kick` (start it and return). The matcher registers itself
per database with `register`; with none registered the rows simply wait for the periodic job.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra import last_statement
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import FreedSlot

log = logging.getLogger("therapy_scheduler.freed")

# How long a cancel waits by default, after its COMMIT, for the offer of the slot it freed
# (docs/DECISIONS.md; THERAPY_SCHEDULER_WAITLIST_SETTLE_SECONDS).
SETTLE_SECONDS = 1.0

# Given the database and the outbox ids to match (None: every pending row), returns the first offer
# made, if any.
Processor = Callable[[Database, Sequence[uuid.UUID] | None], Awaitable[uuid.UUID | None]]

_processors: dict[int, tuple[Processor, float]] = {}
_running: set[asyncio.Task[uuid.UUID | None]] = set()


@dataclass(frozen=True)
class Recorded:
    """The outbox row of one freed range, as `record_freed` asked for it: `written` tells, once the
    transaction's last statement ran, whether it was (someone was waiting)."""

    id: uuid.UUID
    kept: last_statement.Kept

    @property
    def written(self) -> bool:
        return bool(self.kept.written)


async def record_freed(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    start: datetime,
    end: datetime,
    cause: str,
    now: datetime,
) -> Recorded:
    """The outbox row of one freed range, written in the caller's transaction when the organization
    has a client waiting (with nobody waiting nothing is written and nothing is left to match:
    docs/DECISIONS.md, "The cancel and the waitlist"). Inside a write transaction on PostgreSQL
    (`Database.write()`) its last statement checks that, at no round trip: while nobody waits it
    sends a column, not the row. On SQLite the INSERT checks it itself."""
    freed_id = uuid.uuid4()
    kept = await last_statement.insert_later(
        conn,
        FreedSlot,
        {
            "id": freed_id,
            "organization_id": organization_id,
            "therapist_id": therapist_id,
            "start_time": start,
            "end_time": end,
            "cause": cause,
            "created_at": now,
            "attempts": 0,
        },
        only_if=_SOMEONE_WAITING,
    )
    return Recorded(freed_id, kept)


# Through the waitlist's (organization_id, status) index.
_SOMEONE_WAITING = (
    "EXISTS (SELECT 1 FROM waitlist_entries WHERE organization_id = :{row}organization_id "
    "AND status = 'waiting')"
)


def register(db: Database, processor: Processor, *, wait_seconds: float = SETTLE_SECONDS) -> None:
    """Match this database's freed slots with `processor` (the app wires the waitlist's matcher);
    `settle` waits at most `wait_seconds` for it."""
    _processors[id(db)] = (processor, wait_seconds)


def unregister(db: Database) -> None:
    _processors.pop(id(db), None)


def _start(db: Database, ids: Sequence[uuid.UUID] | None) -> asyncio.Task[uuid.UUID | None] | None:
    registered = _processors.get(id(db))
    if registered is None:
        return None
    task = asyncio.ensure_future(registered[0](db, ids))
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[uuid.UUID | None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The periodic job retries the rows; only the kind of failure is logged (no PHI).
        log.warning("matching freed slots failed: %s", type(task.exception()).__name__)


async def settle(db: Database, recorded: Sequence[Recorded]) -> uuid.UUID | None:
    """After the freeing transaction committed: match the rows `record_freed` wrote, waiting a
    bounded time (see `register`) for the first offer made; the matching goes on in the background
    if it takes longer. Nothing to do (no statement, no task) when nobody was waiting."""
    ids = [r.id for r in recorded if r.written]
    if not ids:
        return None
    task = _start(db, ids)
    if task is None:
        return None
    done, _ = await asyncio.wait({task}, timeout=_processors[id(db)][1])
    if task in done and not task.cancelled() and task.exception() is None:
        return task.result()
    return None


def kick(db: Database, recorded: Sequence[Recorded] | None = None) -> None:
    """After the freeing transaction committed: start matching the rows `record_freed` wrote (None:
    all pending) and return."""
    ids = None if recorded is None else [r.id for r in recorded if r.written]
    if ids is not None and not ids:
        return
    _start(db, ids)


async def drain() -> None:
    """Wait for the matching started by `settle`/`kick` (tests, and the app's shutdown)."""
    while _running:
        await asyncio.gather(*list(_running), return_exceptions=True)
