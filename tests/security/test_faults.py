"""Faults of the database, on a private PostgreSQL cluster that these tests start, stop and restart (the
shared server is never touched): an outage under load answers 503 DATABASE_UNAVAILABLE with Retry-After
within 2 s and the service recovers by itself; statement timeouts and an exhausted pool are 503s too;
clients that hang up mid-request leave nothing behind."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from tests.api_processes import server_processes
from tests.conftest import make_settings
from tests.fixtures import Clinic, seed_clinic
from tests.security.servers import ThrowawayPostgres
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.infra.db import Database
from therapy_scheduler.migrations import upgrade

SESSIONS = "/get-sessions-optimized"


@dataclass
class FaultDB:
    cluster: ThrowawayPostgres
    url: str  # SQLAlchemy URL of the migrated, seeded database
    raw_url: str  # asyncpg URL of the same database
    clinic: Clinic


@pytest.fixture(scope="module")
def fault_db() -> Iterator[FaultDB]:
    cluster = ThrowawayPostgres()
    try:
        cluster.start()

        async def create() -> None:
            conn = await asyncpg.connect(cluster.admin_url)
            await conn.execute("CREATE DATABASE ts_fault")
            await conn.close()

        asyncio.run(create())
        raw = cluster.admin_url.rsplit("/", 1)[0] + "/ts_fault"
        upgrade(raw)
        url = raw.replace("postgresql://", "postgresql+asyncpg://")
        settings = make_settings(url)

        async def seed() -> Clinic:
            database = Database.from_settings(settings)
            try:
                return await seed_clinic(database, settings)
            finally:
                await database.dispose()

        yield FaultDB(cluster, url, raw, asyncio.run(seed()))
    finally:
        cluster.destroy()


@dataclass
class Sample:
    started: float
    finished: float
    status: int
    code: str | None
    retry_after: str | None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


async def _load(base: str, headers: dict[str, str], stop: asyncio.Event) -> list[Sample]:
    samples: list[Sample] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while not stop.is_set():
            started = time.monotonic()
            r = await http.get(SESSIONS, headers=headers)
            body = r.json()
            samples.append(
                Sample(
                    started,
                    time.monotonic(),
                    r.status_code,
                    None if body.get("success") else body.get("code"),
                    r.headers.get("retry-after"),
                )
            )
            await asyncio.sleep(0.02)
    return samples


def test_outage_under_load_is_503_then_recovers(
    fault_db: FaultDB, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    env = {
        "THERAPY_SCHEDULER_DATABASE_URL": fault_db.url,
        "THERAPY_SCHEDULER_ENVIRONMENT": "test",
        "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
        "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "4",
    }
    headers = fault_db.clinic.headers("admin")

    async def scenario(base: str) -> tuple[list[Sample], float, float, float]:
        stop = asyncio.Event()
        workers = [asyncio.create_task(_load(base, headers, stop)) for _ in range(4)]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(fault_db.cluster.stop, "fast")
        down = time.monotonic()
        await asyncio.sleep(3.0)
        # `pg_ctl start -w` returns a little after the server accepts connections: requests in
        # between may already succeed, so the outage ends when the start is asked for.
        restart = time.monotonic()
        await asyncio.to_thread(fault_db.cluster.start)
        up = time.monotonic()
        await asyncio.sleep(7.0)
        stop.set()
        samples = [s for w in workers for s in await w]
        return sorted(samples, key=lambda s: s.started), down, restart, up

    with server_processes([env], log_dir=tmp_path) as [base]:
        samples, down, restart, up = asyncio.run(scenario(base))

    before = [s for s in samples if s.finished < down - 0.5]
    during = [s for s in samples if s.started > down and s.finished < restart]
    after_up = [s for s in samples if s.started >= up]
    timeline = [(round(s.started - down, 2), round(s.seconds, 2), s.status) for s in samples]
    assert min(len(before), len(during), len(after_up)) >= 3, timeline
    assert {s.status for s in before} == {200}
    # Every answer is a success or a clean, quick 503 — nothing else, nothing slow.
    assert {(s.status, s.code) for s in samples} <= {(200, None), (503, "DATABASE_UNAVAILABLE")}
    assert all(s.retry_after == "2" for s in samples if s.status == 503)
    slowest = max(s.seconds for s in samples)
    assert slowest < 2.0, slowest
    assert {s.status for s in during} == {503}
    first_ok = next(s for s in after_up if s.status == 200)
    recovery = first_ok.finished - up
    assert recovery < 5.0, recovery
    assert {s.status for s in after_up if s.started > first_ok.finished} == {200}
    record_property(
        "measurement",
        f"outage: {len(samples)} requests, {len(during)} during the outage (all 503), "
        f"slowest answer {slowest * 1000:.0f} ms, first 200 {recovery * 1000:.0f} ms after the "
        "database was back",
    )


@pytest.fixture
async def fault_app(fault_db: FaultDB) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    settings = make_settings(
        fault_db.url,
        db_pool_size=1,
        db_pool_timeout_seconds=0.5,
        db_statement_timeout_ms=300,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, app.state.db
    await close_app(app)


def _assert_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "2"
    assert r.json() == {
        "success": False,
        "error": "The database is unavailable; retry shortly",
        "code": "DATABASE_UNAVAILABLE",
        "request_id": r.headers["x-request-id"],
        "details": {},
    }


async def test_statement_timeout_is_503(
    fault_db: FaultDB, fault_app: tuple[httpx.AsyncClient, Database]
) -> None:
    """A query stuck behind a lock for longer than the statement timeout is cancelled by the
    server: 503, not 500, and the next request (lock gone) works."""
    client, _ = fault_app
    headers = fault_db.clinic.headers("admin")
    assert (await client.get(SESSIONS, headers=headers)).status_code == 200
    locker = await asyncpg.connect(fault_db.raw_url)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        r = await client.get(SESSIONS, headers=headers)
        elapsed = time.monotonic() - started
        await tx.rollback()
    finally:
        await locker.close()
    _assert_503(r)
    assert elapsed < 2.0
    assert (await client.get(SESSIONS, headers=headers)).status_code == 200


async def test_connections_closed_by_the_server_are_replaced_before_use(
    fault_db: FaultDB, fault_app: tuple[httpx.AsyncClient, Database]
) -> None:
    """The pools test connections at checkout without a round trip: after the server ended every
    pooled connection (as a restart or failover does), the next read and the next write still
    succeed instead of failing once on a dead connection."""
    client, db = fault_app
    headers = fault_db.clinic.headers("admin")
    assert (await client.get(SESSIONS, headers=headers)).status_code == 200
    async with db.write() as conn:
        await conn.execute(text("SELECT 1"))
    admin = await asyncpg.connect(fault_db.raw_url)
    try:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'therapy-scheduler'"
        )
    finally:
        await admin.close()
    assert ended == 2  # the read pool's and the write pool's only connections
    await asyncio.sleep(0.3)  # the server's goodbye reaches the idle connections

    assert (await client.get(SESSIONS, headers=headers)).status_code == 200
    async with db.write() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


async def test_pool_exhaustion_is_503_quickly(
    fault_db: FaultDB, fault_app: tuple[httpx.AsyncClient, Database]
) -> None:
    client, db = fault_app
    headers = fault_db.clinic.headers("admin")
    async with db.reader.connect():  # the read pool's only connection, held
        started = time.monotonic()
        r = await client.get(SESSIONS, headers=headers)
        elapsed = time.monotonic() - started
    _assert_503(r)
    assert 0.4 < elapsed < 2.0
    assert (await client.get(SESSIONS, headers=headers)).status_code == 200


def _hang_up(port: int, path: str, token: str) -> None:
    """Send a request and close the socket without reading the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )


def test_client_disconnects_are_harmless(fault_db: FaultDB) -> None:
    """Clients hanging up mid-request (here while the query waits on a lock) leak no connection,
    transaction or lock: afterwards the pool of 2 still serves, and the database shows no session of
    the service left inside a transaction."""
    env = {
        "THERAPY_SCHEDULER_DATABASE_URL": fault_db.url,
        "THERAPY_SCHEDULER_ENVIRONMENT": "test",
        "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
        "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "2",
        "THERAPY_SCHEDULER_DB_STATEMENT_TIMEOUT_MS": "1000",
    }
    token = fault_db.clinic.tokens["admin"]

    async def scenario(base: str) -> None:
        port = int(base.rsplit(":", 1)[1])
        locker = await asyncpg.connect(fault_db.raw_url)
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        for _ in range(10):
            await asyncio.to_thread(_hang_up, port, SESSIONS, token)
        await asyncio.sleep(0.3)
        await tx.rollback()
        # Unlocked, and then quickly aborted by the client mid-flight, many more times than the pool.
        for _ in range(20):
            await asyncio.to_thread(_hang_up, port, SESSIONS, token)
        await asyncio.sleep(1.5)
        stuck = await locker.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'therapy-scheduler' "
            "AND state LIKE 'idle in transaction%' "
            # A leaked transaction stays idle in it; the service's own short ones (the audit
            # writer's flush, the periodic jobs) can be caught between two statements on a
            # loaded machine, but not for a second.
            "AND state_change < clock_timestamp() - interval '1 second'"
        )
        await locker.close()
        assert stuck == 0
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            statuses = [
                (await http.get(SESSIONS, headers={"Authorization": f"Bearer {token}"})).status_code
                for _ in range(5)
            ]
        assert statuses == [200] * 5

    with server_processes([env]) as [base]:
        asyncio.run(scenario(base))
