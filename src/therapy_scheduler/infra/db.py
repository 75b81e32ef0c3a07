"""Engines, connection pools and the per-request transaction (tables and column types: models/)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from therapy_scheduler.config import Settings
from therapy_scheduler.infra import changes

SQLITE_WRITE_WAIT_SECONDS = 15.0


def _configure_sqlite(engine: AsyncEngine, *, writer: bool) -> None:
    """Foreign keys on, WAL, a busy timeout, and our own BEGIN.

    pysqlite's implicit transactions are switched off so that a write transaction starts with
    BEGIN IMMEDIATE: SQLite then serializes writers at the start of the transaction instead of failing
    one of them at its first write. Reads run in autocommit, as on PostgreSQL: each statement reads
    its own snapshot (WAL), and BEGIN/COMMIT would be two more hand-offs to aiosqlite's thread.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


# Loggers that print SQL parameters or result rows (names, emails, notes) when left at DEBUG/INFO.
_CHATTY_DRIVER_LOGGERS = {"aiosqlite": logging.INFO, "sqlalchemy.engine": logging.WARNING}


def _quiet_driver_logs() -> None:
    """Session data is PHI: even when the service (or root) logs at DEBUG, the drivers must not echo
    statement parameters or rows. An explicit, more verbose level set by an operator is kept."""
    for name, level in _CHATTY_DRIVER_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def _refuse_closed_connections(engine: AsyncEngine) -> None:
    """Test a pooled PostgreSQL connection at checkout without a round trip.

    asyncpg keeps reading from every open connection, so it knows a connection is closed as soon as
    the server ends it (a restart, a failover, `pg_terminate_backend`, PgBouncer going away). The
    pool then discards it and hands out another (SQLAlchemy retries the checkout on
    `DisconnectionError`). A connection that dies silently (a network path dropped without a reset)
    is not seen here: its first statement fails, SQLAlchemy invalidates the whole pool, and that
    one request answers 503 DATABASE_UNAVAILABLE with Retry-After. `db_pool_pre_ping` adds a real
    round trip per checkout for networks where that matters.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


# The reader engine: every statement in autocommit (its own snapshot, as READ COMMITTED gives inside
# a transaction too), and no ROLLBACK when a connection goes back to the pool, since an autocommit
# connection has nothing to roll back (on SQLite each one would be a hand-off to aiosqlite's thread).
# Never on the writer: SQLite's writer connections are in driver autocommit too (our own BEGIN
# IMMEDIATE), and their failed transactions must be rolled back.
_AUTOCOMMIT_READS: dict[str, Any] = {
    "isolation_level": "AUTOCOMMIT",
    "skip_autocommit_rollback": True,
}


def make_engine(url: str, settings: Settings, *, writer: bool = True) -> AsyncEngine:
    _quiet_driver_logs()
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            **({} if writer else _AUTOCOMMIT_READS),
            connect_args={"timeout": 15},
            hide_parameters=True,
        )
        _configure_sqlite(engine, writer=writer)
        return engine
    # PostgreSQL reads run in autocommit: under READ COMMITTED every statement takes its own
    # snapshot whether or not it is inside a transaction, so BEGIN and COMMIT would be two round
    # trips that change nothing. Set on the engine, so that its pooled connections stay in
    # autocommit (and an optional pre-ping is one round trip, `;`, instead of three).
    engine = create_async_engine(
        url,
        **({} if writer else _AUTOCOMMIT_READS),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "application_name": "therapy-scheduler",
                "timezone": "UTC",
            },
        },
    )
    _refuse_closed_connections(engine)
    return engine


@dataclass
class Database:
    """The engines of one running service: `writer` for transactions that change data, `reader` for reads.

    On SQLite, write transactions of one process also queue on an asyncio lock (FIFO) before BEGIN
    IMMEDIATE: SQLite's own busy handler retries with sleeps, which under many concurrent writers wastes
    most of the time and can starve a writer past its timeout. Other processes still serialize through
    SQLite's file lock.
    """

    writer: AsyncEngine
    reader: AsyncEngine
    write_gate: asyncio.Lock | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        changes.watch_writes(self.writer)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        # Reads and writes have pools of their own (each `db_pool_size` connections per process).
        writer = make_engine(settings.database_url, settings, writer=True)
        reader = make_engine(
            settings.read_database_url or settings.database_url, settings, writer=False
        )
        gate = asyncio.Lock() if settings.is_sqlite else None
        return cls(writer=writer, reader=reader, write_gate=gate)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A pooled reader connection. No BEGIN/COMMIT: the reader runs in autocommit."""
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction. Its last statement before COMMIT bumps the change counter of the
        organizations it changed (`infra/changes.py`); an exception rolls both back."""
        if self.write_gate is None:
            async with self.writer.connect() as conn, conn.begin():
                changes.start(conn)
                yield conn
                await changes.bump(conn)
            return
        # Bounded like SQLite's own busy timeout: a TimeoutError becomes a 503 with Retry-After.
        async with asyncio.timeout(SQLITE_WRITE_WAIT_SECONDS):
            await self.write_gate.acquire()
        try:
            async with self.writer.connect() as conn, conn.begin():
                changes.start(conn)
                yield conn
                await changes.bump(conn)
        finally:
            self.write_gate.release()

    async def dispose(self) -> None:
        await self.writer.dispose()
        await self.reader.dispose()
