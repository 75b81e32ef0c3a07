"""Read statements run on other pooled connections while the request goes on with its own
(docs/DECISIONS.md, "The week's reads run alongside the page": the week's calendars and its
authorization checks are read while the page statement runs).

Only where nothing changes but the time:

- PostgreSQL without a replica: every connection reads the primary, and each statement reads its
  own snapshot, as consecutive statements on one autocommit connection already do. Work started
  before the statement that reads the version of an ETag reads that version first on its own
  connection, and the ETag carries the oldest (the week: schedule/service.py), so the answer
  is still at least as new as its ETag.
- Only when the pool can give a connection at once (an idle one, or room for a new one; the
  checkout happens before anything else can run): a request never waits for another connection
  while it holds its own. When the pool is in use (under load), the statement runs on the
  request's own connection when it is awaited, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import QueuePool

from therapy_scheduler.infra.db import Database

T = TypeVar("T")


@asynccontextmanager
async def alongside(
    db: Database, conn: AsyncConnection, *works: Callable[[AsyncConnection], Awaitable[Any]]
) -> AsyncIterator[tuple[Callable[[], Awaitable[Any]], ...]]:
    """Each of `works` started at once, in their order, on a reader connection of its own when the
    pool can give one without waiting (see the module's docstring), else run on `conn` when its
    result is asked for. Yields one function per work that gives its result. Leaving the block
    without asking waits for work already started (on `conn` it never starts); a cancelled
    request cancels it."""
    results: list[Callable[[], Awaitable[Any]]] = []
    started: list[asyncio.Task[Any]] = []
    try:
        for work in works:
            if not _spare_at_once(db):
                results.append(_on(conn, work))
                continue
            spare = await db.reader.connect().start()
            task = asyncio.create_task(_run(spare, work))
            started.append(task)
            results.append(_of(task))
        yield tuple(results)
    except asyncio.CancelledError:
        # The request itself is cancelled (its client went away): so is the work.
        for task in started:
            task.cancel()
        raise
    finally:
        # Otherwise work not asked for is waited for, not cancelled: a statement cancelled
        # mid-flight costs its connection.
        for task in started:
            with suppress(Exception, asyncio.CancelledError):
                await task


def _spare_at_once(db: Database) -> bool:
    """Whether a second reader connection can be had now without waiting (checked before each
    checkout: a request never waits for one while it holds its own)."""
    pool = db.reader.sync_engine.pool
    return (
        db.dialect == "postgresql"
        and not db.has_replica
        and isinstance(pool, QueuePool)
        and pool.checkedout() < pool.size()
    )


async def _run(spare: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    try:
        return await work(spare)
    finally:
        await spare.close()


def _on(
    conn: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[T]]
) -> Callable[[], Awaitable[T]]:
    return lambda: work(conn)


def _of(task: asyncio.Task[T]) -> Callable[[], Awaitable[T]]:
    return lambda: task
