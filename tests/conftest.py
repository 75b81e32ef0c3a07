"""Test harness: every test runs once on SQLite and once on PostgreSQL, against a schema built by the
migrations, through the real app over HTTP (httpx + ASGI)."""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from tests.fixtures import Clinic, seed_clinic
from tests.scaleout import servers
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.migrations import upgrade
from therapy_scheduler.models.base import Base

PG_ADMIN_URL = os.environ.get(
    "THERAPY_SCHEDULER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytest_plugins = ["tests.security.phi_plugin"]  # --phi-scan: the whole suite's logs checked for PHI
BACKENDS = [b for b in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="also run the long fuzz/race/fault runs")


# How the browser tests (tests/e2e/conftest.py) skip when Chromium is missing; under CI=true they fail.
CHROMIUM_MISSING = "Chromium not found at"
CHROMIUM_INSTALL = "apt-get install -y chromium"
# How the scale-out tests (tests/scaleout/conftest.py) skip without a replica and PgBouncer.
SCALEOUT_MISSING = "scale-out servers unavailable:"
SCALEOUT_INSTALL = "apt-get install -y postgresql-15 pgbouncer"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """After the short summary: one line counting the browser tests skipped for want of Chromium and
    saying how to install it (here, not in tests/e2e, so that the xdist controller has it too)."""
    yield
    skipped = {
        report.nodeid
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and CHROMIUM_MISSING in str(report.longrepr[2])
    }
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser tests skipped because Chromium is missing: install it with "
            f"`{CHROMIUM_INSTALL}` (or set THERAPY_SCHEDULER_CHROMIUM to its path)",
            yellow=True,
            bold=True,
        )
    scaleout = {
        report.nodeid
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SCALEOUT_MISSING in str(report.longrepr[2])
    }
    if scaleout:
        terminalreporter.write_line(
            f"{len(scaleout)} scale-out tests (streaming replica, PgBouncer) skipped because the "
            f"servers are missing: install them with `{SCALEOUT_INSTALL}`",
            yellow=True,
            bold=True,
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection loaded (modules, tables, routes, schemas) lives as long as the run: frozen out
    # of the cycle collector's reach, a full collection walks only what the tests made since
    # (docs/PERFORMANCE.md, "The test suite").
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        # The long runs first (a stable sort keeps the rest in order), so that with xdist's
        # work stealing (scripts/test) the other worker takes the short tests around them instead
        # of waiting at the end for a long run that started last (docs/PERFORMANCE.md, "The test
        # suite").
        items.sort(key=lambda item: "slow" not in item.keywords)
        return
    skip = pytest.mark.skip(reason="long run: use --full")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


async def _pg_available() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def pg_admin(sql: str) -> None:
    """One statement on the PostgreSQL server's administrative database (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template_url() -> Iterator[str]:
    """A PostgreSQL database created for this test run (and worker), migrated once."""
    import asyncio

    problem = asyncio.run(_pg_available())
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unavailable: {problem}")
        pytest.skip(f"PostgreSQL unavailable: {problem}")
    name = f"ts_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def scaleout() -> Iterator[servers.ScaleOut]:
    """A primary, its streaming replica and PgBouncer of this test session (tests/scaleout/servers.py),
    migrated; skipped (failed under CI=true) where they cannot run."""
    problem = servers.missing()
    if problem:
        if IN_CI:
            pytest.fail(f"the scale-out servers are required under CI=true: {problem}")
        pytest.skip(f"{SCALEOUT_MISSING} {problem}")
    try:
        running = servers.start()
    except Exception as exc:
        if IN_CI:
            raise
        pytest.skip(f"{SCALEOUT_MISSING} they failed to start: {exc!r}")
    try:
        upgrade(running.plain(running.primary_url))
        yield running
    finally:
        running.stop()


# Database URLs that lead through PgBouncer: their settings turn on `db_pgbouncer`.
PGBOUNCER_URLS: set[str] = set()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


_TABLES = ", ".join(t.name for t in Base.metadata.sorted_tables)
# A test's PostgreSQL database is emptied with DELETE rather than TRUNCATE: TRUNCATE gives every table
# and index new files (created, then synced at COMMIT), about 0.5 s a test on the shared 2-core machine
# against 0.02 s for deleting the few hundred rows a test leaves (docs/PERFORMANCE.md, "The test
# suite"). Like TRUNCATE, it passes over the foreign keys and the audit tables' append-only triggers
# (session_replication_role = replica, for this transaction only) and restarts the sequences.
_EMPTY = "; ".join(
    [
        "SET LOCAL session_replication_role = replica",
        *(f"DELETE FROM {t.name}" for t in Base.metadata.sorted_tables),  # noqa: S608
        "SELECT setval(seqrelid, seqstart, false) FROM pg_sequence",
    ]
)


async def empty_database(url: str) -> None:
    """Delete every row of the service's tables and restart their sequences (what `TRUNCATE …
    RESTART IDENTITY CASCADE` does), or truncate them where the role may not set
    session_replication_role."""
    conn = await asyncpg.connect(url)
    try:
        try:
            async with conn.transaction():
                await conn.execute(_EMPTY)
        except asyncpg.InsufficientPrivilegeError:
            await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database for one test."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "test.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    if request.param == "pgbouncer":
        # The whole test through PgBouncer 1.18 in transaction pooling mode (TEST_BACKENDS=pgbouncer).
        running: servers.ScaleOut = request.getfixturevalue("scaleout")
        url = running.plain(running.primary_url)
        through = running.pgbouncer_url
        PGBOUNCER_URLS.add(through)
    else:
        url = request.getfixturevalue("pg_template_url")
        through = url.replace("postgresql://", "postgresql+asyncpg://")
    import asyncio

    asyncio.run(empty_database(url))
    return through


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "test",
        "rate_limit_user": "off",
        "rate_limit_ip": "off",
        "db_pool_size": 5,
        "db_pgbouncer": database_url in PGBOUNCER_URLS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield app, client
    await close_app(app)


@pytest.fixture
def client(app_and_client: tuple[object, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
def db(app_and_client: tuple[object, httpx.AsyncClient]) -> Database:
    app = app_and_client[0]
    database: Database = app.state.db  # type: ignore[attr-defined]
    return database


@pytest.fixture
async def clinic(db: Database, settings: Settings) -> Clinic:
    return await seed_clinic(db, settings)


async def count_rows(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
