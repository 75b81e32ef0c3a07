"""A read statement run on a second pooled connection while the request goes on with its own
(docs/DECISIONS.md, "The hot read path": the week's authorization checks run in the database
while the request computes its availability).

Only where nothing changes but the time:

- PostgreSQL without a replica: both connections read the primary, and each statement reads its
  own snapshot, as consecutive statements on one autocommit connection already do. Work started
  before the statement that reads the version of an ETag reads that version first on its own
  connection, and the ETag carries the older one (the week: schedule/service.py), so the answer
  is still at least as new as its ETag.
- Only when the pool can give a connection at once (an idle one, or room for a new one; the
  checkout happens before anything else can run): a request never waits for a second connection
  while it holds its first. When the pool is in use (under load), the statement runs on the
  request's own connection when it is awaited, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import QueuePool

from therapy_scheduler.infra.db import Database

T = TypeVar("T")


@asynccontextmanager
async def alongside(
    db: Database, conn: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[T]]
) -> AsyncIterator[Callable[[], Awaitable[T]]]:
    """`work`, started at once on a second reader connection when one can be had without waiting
    (see the module's docstring), else run on `conn` when its result is asked for. Yields the
    function that gives the result. Leaving the block without asking waits for work already
    started (on `conn` it never starts); a cancelled request cancels it."""
    pool = db.reader.sync_engine.pool
    if (
        db.dialect != "postgresql"
        or db.has_replica
        or not isinstance(pool, QueuePool)
        or pool.checkedout() >= pool.size()
    ):
        yield lambda: work(conn)
        return
    spare = await db.reader.connect().start()

    async def run() -> T:
        try:
            return await work(spare)
        finally:
            await spare.close()

    task = asyncio.create_task(run())
    try:
        yield lambda: task
    except asyncio.CancelledError:
        # The request itself is cancelled (its client went away): so is the work.
        task.cancel()
        raise
    finally:
        # Otherwise work not asked for is waited for, not cancelled: a statement cancelled
        # mid-flight costs its connection.
        with suppress(Exception, asyncio.CancelledError):
            await task
