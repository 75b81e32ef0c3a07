"""Fixtures of the scale-out tests: one primary + streaming replica + PgBouncer per test session (and
xdist worker), started by tests/scaleout/servers.py; each test gets them emptied, the replica
replaying, and an app whose reads go to the replica.

Without the servers (no PostgreSQL server binaries or no PgBouncer) the tests skip, counted in one
summary line (tests/conftest.py); under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.booking.conftest import redated_document
from tests.conftest import empty_database, make_settings
from tests.fixtures import Clinic, seed_clinic
from tests.scaleout import servers
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.config import Settings
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.models import FLOOR_KEY


async def sql(url: str, statement: str, *args: Any) -> Any:
    """One statement on a fresh connection (not through the app), returning the first value."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def wait_replayed(scaleout: servers.ScaleOut) -> None:
    """Until the replica has replayed everything the primary has written so far (bounded)."""
    target = await sql(scaleout.primary_url, "SELECT pg_current_wal_lsn()::text")
    for _ in range(1000):
        done = await sql(
            scaleout.replica_url,
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
            target,
        )
        if done:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the replica did not catch up with the primary")


async def pause_replay(scaleout: servers.ScaleOut) -> None:
    await sql(scaleout.replica_url, "SELECT pg_wal_replay_pause()")


async def resume_replay(scaleout: servers.ScaleOut) -> None:
    await sql(scaleout.replica_url, "SELECT pg_wal_replay_resume()")


@pytest.fixture
async def fresh(scaleout: servers.ScaleOut) -> AsyncIterator[servers.ScaleOut]:
    """The servers with empty tables, the replica replaying and caught up; replay resumed after."""
    await resume_replay(scaleout)
    await empty_database(scaleout.plain(scaleout.primary_url))
    # The write positions' floor row, as migration 0013 leaves it: no position was lost.
    await sql(
        scaleout.primary_url,
        "INSERT INTO user_write_positions VALUES ($1, $1, 0)",
        FLOOR_KEY,
    )
    yield scaleout
    await resume_replay(scaleout)


@dataclass
class Stack:
    servers: servers.ScaleOut
    settings: Settings
    app: Any
    client: httpx.AsyncClient
    clinic: Clinic


def scaleout_settings(
    scaleout: servers.ScaleOut, *, via_pgbouncer: bool = False, **overrides: object
) -> Settings:
    """Writes on the primary (directly or through PgBouncer), reads on the replica."""
    return make_settings(
        scaleout.pgbouncer_url if via_pgbouncer else scaleout.primary_url,
        read_database_url=scaleout.replica_url,
        **overrides,
    )


async def open_stack(scaleout: servers.ScaleOut, settings: Settings) -> Stack:
    """An app on `settings` with the booking clinic seeded on the primary and replayed."""
    app = create_app(settings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    db = app.state.db
    clinic = await seed_clinic(db, settings)
    async with db.write() as conn:
        await import_document(conn, parse_document(redated_document()))
    await wait_replayed(scaleout)
    return Stack(scaleout, settings, app, client, clinic)


async def close_stack(stack: Stack) -> None:
    await stack.client.aclose()
    await close_app(stack.app)


@pytest.fixture
async def stack(fresh: servers.ScaleOut) -> AsyncIterator[Stack]:
    """The app with writes on the primary and reads on the replica."""
    opened = await open_stack(fresh, scaleout_settings(fresh))
    yield opened
    await close_stack(opened)
