"""`alongside` (infra/alongside.py): on PostgreSQL without a replica, work runs on a second pooled
connection at once, and only when the pool can give one without waiting; otherwise (SQLite, a
pool in use) it runs on the request's own connection when its result is asked for. Leaving the
block without asking cancels it and gives the connection back."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.fixtures import Clinic
from therapy_scheduler.infra.alongside import alongside
from therapy_scheduler.infra.db import Database


async def _backend(conn: AsyncConnection) -> Any:
    """Which server process (PostgreSQL) or connection (SQLite) ran the statement."""
    if conn.dialect.name == "postgresql":
        return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    await conn.execute(text("SELECT 1"))
    return id(conn.sync_connection)


def _in_use(db: Database) -> int:
    pool: Any = db.reader.sync_engine.pool
    return int(pool.checkedout())


async def test_work_runs_on_a_second_connection_when_the_pool_has_one(
    db: Database, clinic: Clinic
) -> None:
    async with db.read() as conn:
        own = await _backend(conn)
        async with alongside(db, conn, _backend) as result:
            ran_on = await result()
        # The same connection still serves the request.
        assert await _backend(conn) == own
    if db.dialect == "postgresql":
        assert ran_on != own
    else:
        assert ran_on == own
    assert _in_use(db) == 0


async def test_work_waits_for_no_connection_when_the_pool_is_in_use(
    db: Database, clinic: Clinic
) -> None:
    pool: Any = db.reader.sync_engine.pool
    async with AsyncExitStack() as held:
        conn = await held.enter_async_context(db.read())
        own = await _backend(conn)
        while pool.checkedout() < pool.size():
            await held.enter_async_context(db.read())
        async with alongside(db, conn, _backend) as result:
            assert await result() == own


async def test_leaving_without_the_result_cancels_the_work(db: Database, clinic: Clinic) -> None:
    started = asyncio.Event()

    async def slow(conn: AsyncConnection) -> None:
        started.set()
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_sleep(30)"))

    async with db.read() as conn:
        async with alongside(db, conn, slow):
            if db.dialect == "postgresql":
                await started.wait()
        # The request's connection still works, and the second one went back to the pool.
        assert await _backend(conn)
    assert _in_use(db) == 0
