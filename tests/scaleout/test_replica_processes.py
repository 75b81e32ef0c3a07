"""Read-your-writes across API processes (docs/DEPLOYMENT.md, "Read replicas"): two uvicorn processes,
one reaching the primary through PgBouncer and one directly, both reading on a streaming replica whose
replay is paused. A user who writes through one process reads their write through the other; another
user reading through that same process still reads the (stale) replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.api_processes import counter, server_processes
from tests.booking.conftest import book, hold_body, monday
from tests.fixtures import U_SCHED, U_T1, Clinic, S
from tests.scaleout.conftest import Stack, close_stack, open_stack, pause_replay, scaleout_settings
from tests.scaleout.servers import ScaleOut
from tests.scaleout.test_replica_lag import on_primary, on_replica, session_ids

FALLBACKS = "therapy_scheduler_replica_fallback_reads_total"


@pytest.fixture
async def two(fresh: ScaleOut) -> AsyncIterator[tuple[Stack, list[str]]]:
    """The seeded clinic and 2 API processes reading on the replica: 0 through PgBouncer, 1 direct."""
    stack = await open_stack(fresh, scaleout_settings(fresh))
    envs = [
        {
            "THERAPY_SCHEDULER_DATABASE_URL": fresh.pgbouncer_url if i == 0 else fresh.primary_url,
            "THERAPY_SCHEDULER_DB_PGBOUNCER": str(i == 0).lower(),
            "THERAPY_SCHEDULER_READ_DATABASE_URL": fresh.replica_url,
            "THERAPY_SCHEDULER_DB_POOL_SIZE": "3",
            # The paused replica stays in use however long the test takes: what is proven here is
            # the choice per user, not the lag limit (tests/scaleout/test_replica_health.py).
            "THERAPY_SCHEDULER_REPLICA_MAX_LAG_SECONDS": "3600",
        }
        for i in range(2)
    ]
    try:
        with server_processes(envs, ready_path="/readyz") as urls:
            yield stack, urls
    finally:
        await close_stack(stack)


async def _seen(url: str, clinic: Clinic, who: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await session_ids(client, clinic, who)


async def test_a_user_reads_their_write_through_another_process(
    two: tuple[Stack, list[str]],
) -> None:
    stack, (first, second) = two
    clinic = stack.clinic
    assert (await _seen(second, clinic, "admin"))[S[7]] == "scheduled"
    await pause_replay(stack.servers)

    # A cancel through process 0 (PgBouncer) ...
    async with httpx.AsyncClient(base_url=first, timeout=30) as client:
        r = await client.post(
            "/sessions/cancel",
            json={"session_id": S[7], "reason": "client_illness"},
            headers=clinic.headers("scheduler"),
        )
    assert r.status_code == 200, r.text
    assert await on_replica(stack, "SELECT status FROM sessions WHERE id = $1", S[7]) != "cancelled"

    # ... is read by its author through process 1, which never saw the write: on the primary.
    behind = await counter(second, FALLBACKS, reason="behind_caller_write")
    assert (await _seen(second, clinic, "scheduler"))[S[7]] == "cancelled"
    assert await counter(second, FALLBACKS, reason="behind_caller_write") == behind + 1
    # Another user reading through process 1 still reads the replica: the stale answer, no fallback.
    assert (await _seen(second, clinic, "admin"))[S[7]] == "scheduled"
    assert await counter(second, FALLBACKS, reason="behind_caller_write") == behind + 1

    # And the other way round: a booking through process 1 (direct), read through process 0.
    async with httpx.AsyncClient(base_url=second, timeout=30) as client:
        confirmed = await book(client, clinic, hold_body(monday(1)))
    session_id = str(confirmed["session"]["id"])
    assert session_id in await _seen(first, clinic, "scheduler")
    assert session_id not in await _seen(first, clinic, "admin")


async def test_positions_stay_on_the_primary(two: tuple[Stack, list[str]]) -> None:
    """The positions table is UNLOGGED: the WAL never carries it, so a replica has none of it
    (docs/DECISIONS.md, "Scale-out: replica reads and PgBouncer")."""
    stack, (first, _) = two
    async with httpx.AsyncClient(base_url=first, timeout=30) as client:
        r = await client.post(
            "/sessions/cancel",
            json={"session_id": S[7], "reason": "client_illness"},
            headers=stack.clinic.headers("scheduler"),
        )
    assert r.status_code == 200, r.text
    stored = await on_primary(
        stack, "SELECT position FROM user_write_positions WHERE user_id = $1", U_SCHED
    )
    assert stored > 0
    persistence = "SELECT relpersistence::text FROM pg_class WHERE relname = 'user_write_positions'"
    assert await on_primary(stack, persistence) == "u"
    with pytest.raises(asyncpg.PostgresError, match="unlogged relations during recovery"):
        await on_replica(stack, "SELECT count(*) FROM user_write_positions")


async def test_the_read_audit_stores_no_ones_position(stack: Stack) -> None:
    """The read audit is written by a background task that the first audited read starts
    (infra/audit_writer.py): that task is no part of the request, so its writes store no position
    for the request's caller, who wrote nothing."""
    assert S[8] in await session_ids(stack.client, stack.clinic, "therapist")
    await asyncio.sleep(0)  # the writer task, started by that read, runs up to its wait
    await stack.app.state.audit_writer.close()  # the task writes the queued events, then stops
    audited = "SELECT count(*) FROM audit_events WHERE action = 'phi.read' AND actor_user_id = $1"
    assert await on_primary(stack, audited, U_T1) == 1
    stored = "SELECT count(*) FROM user_write_positions WHERE user_id = $1"
    assert await on_primary(stack, stored, U_T1) == 0
