"""Rate limits (docs/API.md): per user, per IP for unauthenticated requests, 429 RATE_LIMITED with
Retry-After, shared across processes through Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from tests.api_processes import server_processes
from tests.conftest import make_settings
from tests.fixtures import Clinic, seed_clinic
from tests.security.servers import require_redis
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.ratelimit import MemoryCounter, RedisCounter, retry_after_seconds

SESSIONS = "/get-sessions-optimized"


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Clinic]]:
    """The app with 5 requests/minute per user and 3 per IP, in-process counters."""
    settings = make_settings(database_url, rate_limit_user="5", rate_limit_ip="3")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        clinic = await seed_clinic(app.state.db, settings)
        yield client, clinic
    await close_app(app)


def _assert_limited(r: httpx.Response, *, limit: int, per: str) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 120
    assert body == {
        "success": False,
        "error": f"Too many requests; retry in {retry} s",
        "code": "RATE_LIMITED",
        "request_id": r.headers["x-request-id"],
        "details": {"limit": limit, "window_seconds": 60, "per": per},
    }
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["vary"] == "Authorization"


async def test_user_limit_then_429_and_other_users_unaffected(
    limited: tuple[httpx.AsyncClient, Clinic],
) -> None:
    client, clinic = limited
    statuses = [
        (await client.get(SESSIONS, headers=clinic.headers("scheduler"))).status_code
        for _ in range(5)
    ]
    assert statuses == [200] * 5
    _assert_limited(
        await client.get(SESSIONS, headers=clinic.headers("scheduler")), limit=5, per="user"
    )
    # Every route is covered, not just the one that used up the budget.
    _assert_limited(
        await client.get("/get-dropdown-data", headers=clinic.headers("scheduler")),
        limit=5,
        per="user",
    )
    # Another user has their own budget, and the IP budget is not spent by authenticated calls.
    r = await client.get(SESSIONS, headers=clinic.headers("admin"))
    assert r.status_code == 200


async def test_unauthenticated_requests_limited_per_ip(
    limited: tuple[httpx.AsyncClient, Clinic],
) -> None:
    client, clinic = limited
    forged = {"Authorization": "Bearer not.a.token"}
    assert (await client.get(SESSIONS)).status_code == 401
    assert (await client.get(SESSIONS, headers=forged)).status_code == 401
    assert (await client.get("/no-such-path")).status_code == 404
    _assert_limited(await client.get(SESSIONS), limit=3, per="ip")
    # A forged token does not escape the IP budget.
    _assert_limited(await client.get(SESSIONS, headers=forged), limit=3, per="ip")
    # Liveness and metrics stay reachable; a valid token uses the user budget.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get(SESSIONS, headers=clinic.headers("admin"))).status_code == 200


async def test_limits_off_by_setting(client: httpx.AsyncClient, clinic: Clinic) -> None:
    # The test settings turn both limits off: far more than 60 unauthenticated requests pass.
    statuses = {(await client.get(SESSIONS)).status_code for _ in range(80)}
    assert statuses == {401}


@pytest.mark.parametrize("value", ["0", "-5", "ten", ""])
def test_rate_limit_setting_validated(value: str) -> None:
    with pytest.raises(ValidationError, match="positive number of requests per minute"):
        Settings(rate_limit_user=value)


def test_rate_limit_setting_values() -> None:
    s = Settings(rate_limit_user=" OFF ", rate_limit_ip="75")
    assert s.rate_limit("user") is None
    assert s.rate_limit("ip") == 75


def test_retry_after_arithmetic() -> None:
    w = 60_000
    # This window is full: wait for the window to end (30 s) and for its weight to fade below the
    # limit in the next one (10 % of 60 s = 6 s).
    assert (
        retry_after_seconds(limit=10, window_ms=w, elapsed_ms=30_000, current=10, previous=0) == 36
    )
    # Room in this window, but the previous window's weight still fills it: 10 * (60 - 30 - t)/60 ≤ 4
    # → t ≥ 6 s.
    assert (
        retry_after_seconds(limit=10, window_ms=w, elapsed_ms=30_000, current=5, previous=10) == 6
    )
    # One request a minute, spent at the very end of a window: the next fits a whole minute later.
    assert retry_after_seconds(limit=1, window_ms=w, elapsed_ms=59_999, current=1, previous=0) == 61


async def test_memory_counter_is_exact_within_a_window() -> None:
    counter = MemoryCounter()
    decisions = [await counter.hit("k", 3) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert (await counter.hit("other", 3)).allowed


async def test_redis_counter_shared_between_instances() -> None:
    url = require_redis()
    prefix = f"ts:test:{uuid.uuid4().hex}"
    one, two = RedisCounter(url, prefix), RedisCounter(url, prefix)
    try:
        allowed = [(await (one if i % 2 else two).hit("u:x", 4)).allowed for i in range(6)]
        assert allowed == [True, True, True, True, False, False]
    finally:
        await one.close()
        await two.close()
        r = aioredis.Redis.from_url(url)
        keys = [k async for k in r.scan_iter(f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def test_redis_outage_falls_back_to_local_counters() -> None:
    # Nothing listens on port 1: every Redis call fails fast, the local counters still limit.
    counter = RedisCounter("redis://127.0.0.1:1/0", "ts:test:down")
    try:
        allowed = [(await counter.hit("u:y", 2)).allowed for _ in range(3)]
        assert allowed == [True, True, False]
    finally:
        await counter.close()


async def test_limits_shared_by_two_uvicorn_processes(
    database_url: str, clinic: Clinic, tmp_path: object
) -> None:
    url = require_redis()
    prefix = f"ts:test:{uuid.uuid4().hex}"
    env = {
        "THERAPY_SCHEDULER_DATABASE_URL": database_url,
        "THERAPY_SCHEDULER_ENVIRONMENT": "test",
        "THERAPY_SCHEDULER_REDIS_URL": url,
        "THERAPY_SCHEDULER_RATE_LIMIT_USER": "10",
        "THERAPY_SCHEDULER_RATE_LIMIT_IP": "4",
        "THERAPY_SCHEDULER_RATE_LIMIT_PREFIX": prefix,
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "2",
    }
    try:
        with server_processes([env, env]) as [a, b]:
            async with httpx.AsyncClient(timeout=10) as http:
                user = []
                for i in range(14):
                    base = a if i % 2 else b
                    r = await http.get(base + SESSIONS, headers=clinic.headers("therapist"))
                    user.append(r.status_code)
                assert user == [200] * 10 + [429] * 4
                anonymous = [
                    (await http.get((a if i % 2 else b) + SESSIONS)).status_code for i in range(6)
                ]
                assert anonymous == [401] * 4 + [429] * 2
                r = await http.get(a + SESSIONS)
                _assert_limited(r, limit=4, per="ip")
                # The other users of the same processes still have their whole budget.
                r = await http.get(b + SESSIONS, headers=clinic.headers("admin"))
                assert r.status_code == 200
    finally:
        store = aioredis.Redis.from_url(url)
        keys = [k async for k in store.scan_iter(f"{prefix}:*")]
        assert keys, "the processes kept their counters in Redis"
        await store.delete(*keys)
        await store.aclose()
