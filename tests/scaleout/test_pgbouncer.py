"""The service through PgBouncer 1.18 (Debian 12's) in transaction pooling mode, which forwards no
prepared statements: `THERAPY_SCHEDULER_DB_PGBOUNCER=true` is the whole configuration
(docs/DEPLOYMENT.md, "PgBouncer"). The booking and read suites also run through it with
`TEST_BACKENDS=pgbouncer` (tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tests.booking.conftest import book, hold_body, monday
from tests.conftest import make_settings
from tests.scaleout.conftest import Stack, close_stack, open_stack, scaleout_settings
from tests.scaleout.servers import ScaleOut
from therapy_scheduler.infra.db import Database, make_engine


@pytest.fixture
async def bounced(fresh: ScaleOut) -> AsyncIterator[Stack]:
    """Writes through PgBouncer, reads on the replica."""
    opened = await open_stack(
        fresh, scaleout_settings(fresh, via_pgbouncer=True, db_pgbouncer=True)
    )
    yield opened
    await close_stack(opened)


async def test_without_the_setting_pgbouncer_refuses_the_statement_timeout_parameter(
    fresh: ScaleOut,
) -> None:
    engine = make_engine(fresh.pgbouncer_url, make_settings(fresh.pgbouncer_url))
    try:
        with pytest.raises(Exception, match="unsupported startup parameter: statement_timeout"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_with_the_setting_the_timeout_comes_from_the_role(fresh: ScaleOut) -> None:
    settings = make_settings(fresh.pgbouncer_url, db_pgbouncer=True)
    engine = make_engine(fresh.pgbouncer_url, settings)
    try:
        async with engine.connect() as conn:
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
            name = (await conn.execute(text("SHOW application_name"))).scalar_one()
            zone = (await conn.execute(text("SHOW timezone"))).scalar_one()
    finally:
        await engine.dispose()
    assert (timeout, name, zone) == ("10s", "therapy-scheduler", "UTC")


async def test_concurrent_bookings_and_reads_through_pgbouncer(bounced: Stack) -> None:
    """More concurrent statements than PgBouncer has server connections (8): each statement may run
    on another server connection than the one before it, which breaks named prepared statements."""
    client, clinic = bounced.client, bounced.clinic
    db: Database = bounced.app.state.db

    async def read(who: str) -> int:
        r = await client.get("/get-sessions-optimized", headers=clinic.headers(who))
        return r.status_code

    reads = await asyncio.gather(*(read(w) for w in ["admin", "scheduler", "therapist"] * 10))
    assert set(reads) == {200}
    booked = [await book(client, clinic, hold_body(monday(weeks))) for weeks in (1, 2, 3)]
    assert len({b["session"]["id"] for b in booked}) == 3
    async with db.write() as conn:
        through = (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar_one()
    assert through >= 3
    r = await client.get("/get-dropdown-data", headers=clinic.headers("scheduler"))
    assert r.status_code == 200
