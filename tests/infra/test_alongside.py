"""`alongside` (infra/alongside.py): on PostgreSQL without a replica, work runs on a second pooled
connection at once, and only when the pool can give one without waiting; otherwise (SQLite, a
pool in use) it runs on the request's own connection when its result is asked for; several works
each on a connection of their own. Leaving the block without asking waits for work already
started and gives the connections back; a cancelled request cancels it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest
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


async def test_leaving_without_the_result_waits_for_the_work(db: Database, clinic: Clinic) -> None:
    ended = asyncio.Event()

    async def short(conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_sleep(0.2)"))
        ended.set()

    async with db.read() as conn:
        async with alongside(db, conn, short):
            pass
        # Started on a second connection, it ended there (not cancelled mid-statement); on the
        # request's own connection it never started.
        assert ended.is_set() == (db.dialect == "postgresql")
        assert await _backend(conn)
    assert _in_use(db) == 0


async def test_a_cancelled_request_cancels_the_work(db: Database, clinic: Clinic) -> None:
    if db.dialect != "postgresql":
        pytest.skip("work runs alongside on PostgreSQL only")
    started = asyncio.Event()

    async def slow(conn: AsyncConnection) -> None:
        started.set()
        await conn.execute(text("SELECT pg_sleep(30)"))

    async def request() -> None:
        async with db.read() as conn, alongside(db, conn, slow):
            await asyncio.sleep(30)

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
    # Both connections went back to the pool.
    assert _in_use(db) == 0


async def test_several_works_run_each_on_a_connection_of_its_own(
    db: Database, clinic: Clinic
) -> None:
    async with db.read() as conn:
        own = await _backend(conn)
        async with alongside(db, conn, _backend, _backend) as (first, second):
            second_ran_on = await second()
            first_ran_on = await first()
        assert await _backend(conn) == own
    if db.dialect == "postgresql":
        assert len({own, first_ran_on, second_ran_on}) == 3
    else:
        assert first_ran_on == second_ran_on == own
    assert _in_use(db) == 0


@pytest.mark.parametrize("free", [0, 1])
async def test_works_beyond_the_free_connections_run_on_the_requests_own(
    db: Database, clinic: Clinic, free: int
) -> None:
    pool: Any = db.reader.sync_engine.pool
    async with AsyncExitStack() as held:
        conn = await held.enter_async_context(db.read())
        own = await _backend(conn)
        # Room for `free` more connections: a work never waits for one.
        while pool.checkedout() < pool.size() - free:
            await held.enter_async_context(db.read())
        async with alongside(db, conn, _backend, _backend) as (first, second):
            ran_on = [await first(), await second()]
    spared = free if db.dialect == "postgresql" else 0
    assert [where != own for where in ran_on] == [True] * spared + [False] * (2 - spared)


async def test_a_failed_work_fails_alone(db: Database, clinic: Clinic) -> None:
    async def fails(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT 1"))
        raise LookupError("no such row")

    async with db.read() as conn:
        async with alongside(db, conn, fails, _backend) as (failed, other):
            with pytest.raises(LookupError):
                await failed()
            assert await other()
        # The request's own connection still serves.
        assert await _backend(conn)
    assert _in_use(db) == 0
