"""A replica that is down or lags beyond `replica_max_lag_seconds` is taken out of use (reads go to
the primary, a metric and a log line say so) and back in use when it recovers; no request fails
because of it. The checks run in the app's background task (every
`replica_check_interval_seconds`); here they are called directly, one at a time."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures import S
from tests.scaleout.conftest import (
    Stack,
    close_stack,
    open_stack,
    pause_replay,
    resume_replay,
    scaleout_settings,
    sql,
    wait_replayed,
)
from tests.scaleout.servers import ScaleOut
from therapy_scheduler.infra.db import Database

SESSIONS = "/get-sessions-optimized"


def gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def metrics(client: httpx.AsyncClient) -> str:
    r = await client.get("/metrics")
    assert r.status_code == 200
    return r.text


def database(stack: Stack) -> Database:
    db: Database = stack.app.state.db
    return db


@pytest.fixture
async def strict(fresh: ScaleOut) -> AsyncIterator[Stack]:
    """The app with a lag limit of 0 s: any lag the checks see takes the replica out of use."""
    opened = await open_stack(fresh, scaleout_settings(fresh, replica_max_lag_seconds=0))
    yield opened
    await close_stack(opened)


async def test_a_stopped_replica_is_taken_out_of_use_and_back_when_it_returns(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    client, clinic, db = stack.client, stack.clinic, database(stack)
    assert db.replica is not None
    assert (await client.get(SESSIONS, headers=clinic.headers("admin"))).status_code == 200
    assert db.replica.in_use
    stack.servers.stop_replica()
    try:
        with caplog.at_level(logging.WARNING, logger="therapy_scheduler.replica"):
            pages = [
                await client.get(SESSIONS, headers=clinic.headers(who))
                for who in ("admin", "scheduler", "therapist")
            ]
            assert [p.status_code for p in pages] == [200, 200, 200]
            assert S[7] in {s["id"] for s in pages[0].json()["data"]["sessions"]}
            assert not db.replica.in_use
            assert not await db.replica.check()
        assert any(
            "read replica taken out of use, reads go to the primary: unreachable" in r.message
            for r in caplog.records
        )
        text = await metrics(client)
        assert gauge(text, "therapy_scheduler_replica_in_use") == 0
        assert "therapy_scheduler_replica_fallback_reads_total" in text
    finally:
        stack.servers.start_replica()
    await wait_replayed(stack.servers)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="therapy_scheduler.replica"):
        assert await db.replica.check()
    assert any("read replica back in use" in r.message for r in caplog.records)
    assert gauge(await metrics(client), "therapy_scheduler_replica_in_use") == 1
    assert (await client.get(SESSIONS, headers=clinic.headers("admin"))).status_code == 200


async def test_a_replica_lagging_beyond_the_limit_is_out_of_use_until_it_catches_up(
    strict: Stack,
) -> None:
    client, clinic, db = strict.client, strict.clinic, database(strict)
    assert db.replica is not None
    assert await db.replica.check()
    await pause_replay(strict.servers)
    await sql(
        strict.servers.primary_url,
        "UPDATE sessions SET status = 'cancelled' WHERE id = $1",
        S[7],
    )
    await db.replica.check()  # samples the primary's position the replica has not replayed
    assert not await db.replica.check()  # ... and some time later it still has not
    assert db.replica.lag_seconds > 0
    text = await metrics(client)
    assert gauge(text, "therapy_scheduler_replica_in_use") == 0
    assert gauge(text, "therapy_scheduler_replica_lag_seconds") > 0
    # Every reader is on the primary now, not only the writer: the admin sees the cancel.
    r = await client.get(SESSIONS, headers=clinic.headers("admin"), params={"limit": 100})
    assert {s["id"]: s["status"] for s in r.json()["data"]["sessions"]}[S[7]] == "cancelled"

    await resume_replay(strict.servers)
    await wait_replayed(strict.servers)
    assert await db.replica.check()
    assert db.replica.lag_seconds == 0
    assert gauge(await metrics(client), "therapy_scheduler_replica_in_use") == 1
