"""Alembic migrations: one history for SQLite and PostgreSQL (PostgreSQL-only guarantees added on top)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from therapy_scheduler.config import normalize_database_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", normalize_database_url(database_url))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations; safe to call from inside a running event loop (runs in its own thread)."""
    if database_url.startswith("sqlite"):
        _ensure_sqlite_dir(normalize_database_url(database_url))
    _run(command.upgrade, database_url, revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision`; like `upgrade`, safe inside a running event loop."""
    _run(command.downgrade, database_url, revision)


def _run(step: Callable[[Config, str], None], database_url: str, revision: str) -> None:
    config = alembic_config(database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        step(config, revision)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            step(config, revision)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def engine_for_migrations(url: str) -> AsyncEngine:
    return create_async_engine(normalize_database_url(url))
