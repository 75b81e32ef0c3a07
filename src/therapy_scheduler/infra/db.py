"""Engines, connection pools and the per-request transaction (tables and column types: models/)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, literal_column, make_url, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from therapy_scheduler.config import Settings
from therapy_scheduler.infra import changes
from therapy_scheduler.infra.json_columns import load_json
from therapy_scheduler.infra.replica import (
    REPLAY_POSITION,
    STORE_POSITION,
    Freshness,
    ReplicaHealth,
    current_freshness,
)

log = logging.getLogger("therapy_scheduler.db")

SQLITE_WRITE_WAIT_SECONDS = 15.0
# How much of a SQLite file its connections read through a memory map: the operating system's file
# cache in place, shared by them all (docs/DECISIONS.md, "The hot read path").
SQLITE_MMAP_BYTES = 1 << 30


def _configure_sqlite(engine: AsyncEngine, *, writer: bool) -> None:
    """Foreign keys on, WAL, a busy timeout, a memory map (`SQLITE_MMAP_BYTES`), our own BEGIN.

    pysqlite's implicit transactions are switched off so that a write transaction starts with
    BEGIN IMMEDIATE: SQLite then serializes writers at the start of the transaction instead of failing
    one of them at its first write. Reads run in autocommit, as on PostgreSQL: each statement reads
    its own snapshot (WAL), and BEGIN/COMMIT would be two more hand-offs to aiosqlite's thread."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
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


def _sqlite_pool(url: str, settings: Settings) -> dict[str, Any]:
    """A file database's pool is sized as PostgreSQL's: `db_pool_size` connections kept open, no
    overflow. SQLAlchemy's default for SQLite (5 kept, 10 more opened and closed on demand) made a
    busy process open a connection per request beyond the fifth: a thread of aiosqlite's, the
    PRAGMAs and the schema read each time (docs/DECISIONS.md, "The hot read path"). An in-memory
    database keeps its single shared connection."""
    database = make_url(url).database
    if not database or database == ":memory:" or "mode=memory" in url:
        return {}
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": 0,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }


def _unique_statement_name() -> str:
    return f"__ts_{uuid.uuid4().hex}__"


def make_engine(url: str, settings: Settings, *, writer: bool = True) -> AsyncEngine:
    _quiet_driver_logs()
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            **({} if writer else _AUTOCOMMIT_READS),
            **_sqlite_pool(url, settings),
            connect_args={"timeout": 15},
            hide_parameters=True,
            json_deserializer=load_json,
        )
        _configure_sqlite(engine, writer=writer)
        return engine
    server_settings = {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "application_name": "therapy-scheduler",
        "timezone": "UTC",
    }
    pgbouncer: dict[str, Any] = {}
    if settings.db_pgbouncer:
        # PgBouncer in transaction pooling mode, any version (docs/DEPLOYMENT.md, "PgBouncer"): a
        # named prepared statement lives on one server connection, and the next statement may run
        # on another. asyncpg then uses unnamed statements (`statement_cache_size=0`), SQLAlchemy
        # keeps no cache of prepared statements and names the ones it still prepares uniquely.
        # PgBouncer refuses `statement_timeout` as a startup parameter: set it on the role.
        del server_settings["statement_timeout"]
        pgbouncer = {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    # PostgreSQL reads run in autocommit: under READ COMMITTED every statement takes its own
    # snapshot whether or not it is inside a transaction, so BEGIN and COMMIT would be two round
    # trips that change nothing. Set on the engine, so that its pooled connections stay in
    # autocommit (and an optional pre-ping is one round trip, `;`, instead of three).
    # Through PgBouncer, reads run in a transaction too: SQLAlchemy prepares each statement (named)
    # before executing it, and only an open transaction keeps PgBouncer from giving the two steps
    # different server connections.
    reads = {} if writer or settings.db_pgbouncer else _AUTOCOMMIT_READS
    engine = create_async_engine(
        url,
        **reads,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=1800,
        hide_parameters=True,
        json_deserializer=load_json,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
            "server_settings": server_settings,
            **pgbouncer,
        },
    )
    _refuse_closed_connections(engine)
    return engine


async def _return_read(conn: AsyncConnection) -> None:
    """Gives a reader connection back to its pool. A reader runs in autocommit with no ROLLBACK on
    return, so a connection that is neither invalidated nor in a transaction goes back without
    suspending: closed directly, without the task of its own that SQLAlchemy's `async with` runs the
    close in so that a cancellation cannot interrupt it (a task, its scheduling and a shield per read:
    docs/DECISIONS.md, "The hot read path"). Any other connection is closed that way."""
    sync = conn.sync_connection
    if sync is not None and not sync.invalidated and not sync.in_transaction():
        await conn.close()
        # A request waiting for a connection was woken by this one's return: let it run before this
        # task goes on (and perhaps checks out again), as it did after the close's own task.
        await asyncio.sleep(0)
    else:
        await conn.__aexit__(None, None, None)


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
    # With a read replica (`read_database_url`, PostgreSQL): `reader` is the replica, and
    # `primary_reader` an autocommit pool on the primary for the reads the replica cannot serve
    # (infra/replica.py).
    primary_reader: AsyncEngine | None = None
    replica: ReplicaHealth | None = None
    # PostgreSQL without PgBouncer: a write of one statement may run in autocommit
    # (`single_statement_write`). Through PgBouncer in transaction pooling a statement prepared
    # outside a transaction may be executed on another server connection.
    autocommit_writes: bool = False

    def __post_init__(self) -> None:
        changes.watch_writes(self.writer)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        # Reads and writes have pools of their own (each `db_pool_size` connections per process).
        writer = make_engine(settings.database_url, settings, writer=True)
        gate = asyncio.Lock() if settings.is_sqlite else None
        autocommit = not settings.is_sqlite and not settings.db_pgbouncer
        replica_url = settings.read_database_url
        if settings.is_sqlite or not replica_url or replica_url == settings.database_url:
            reader = make_engine(settings.database_url, settings, writer=False)
            return cls(writer=writer, reader=reader, write_gate=gate, autocommit_writes=autocommit)
        reader = make_engine(replica_url, settings, writer=False)
        primary_reader = make_engine(settings.database_url, settings, writer=False)
        health = ReplicaHealth(reader, primary_reader, settings.replica_max_lag_seconds)
        return cls(
            writer=writer,
            reader=reader,
            primary_reader=primary_reader,
            replica=health,
            autocommit_writes=autocommit,
        )

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @property
    def has_replica(self) -> bool:
        return self.replica is not None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A pooled reader connection. No BEGIN/COMMIT: the reader runs in autocommit.

        With a replica: a replica connection when the replica is in use and is fresh enough for
        this request's caller (infra/replica.py), else a connection to the primary. A replica that
        cannot be reached is taken out of use and the read goes to the primary."""
        if self.replica is None:
            conn = await self.reader.connect().start()
            try:
                yield conn
            finally:
                await _return_read(conn)
            return
        replica = await self._replica_connection(self.replica, current_freshness())
        if replica is None:
            async with self.primary_read() as conn:
                yield conn
            return
        try:
            yield replica
        finally:
            await replica.close()

    def primary_read(self) -> AsyncConnection:
        """An autocommit connection to the primary (the reader itself when there is no replica)."""
        return (self.primary_reader or self.reader).connect()

    async def _replica_connection(
        self, health: ReplicaHealth, fresh: Freshness | None
    ) -> AsyncConnection | None:
        if not health.in_use:
            health.fell_back("out_of_use")
            return None
        conn = self.reader.connect()
        try:
            await conn.start()
            if fresh is None or fresh.verified:
                return conn
            if fresh.caller is None and fresh.min_position <= health.replayed:
                return conn
            reason = await self._probe(conn, health, fresh)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await conn.close()
            health.mark_down(exc)
            health.fell_back("unreachable")
            return None
        if reason is None:
            fresh.verified = True
            return conn
        await conn.close()
        health.fell_back(reason)
        return None

    async def _probe(
        self, conn: AsyncConnection, health: ReplicaHealth, fresh: Freshness
    ) -> str | None:
        """One round trip on the replica: its replay position and, when known, its view of the
        caller. None when the replica may serve this request, else why not."""
        replayed: Any = literal_column(REPLAY_POSITION).label("replayed")
        if fresh.caller is None:
            position = (await conn.execute(text(f"SELECT {REPLAY_POSITION}"))).scalar_one()
            row: Any = None
        else:
            statement = fresh.caller.statement.add_columns(replayed)
            row = (await conn.execute(statement, fresh.caller.params)).first()
            position = None if row is None else row[-1]
        if position is not None:
            health.saw_replayed(int(position))
        if health.replayed < fresh.min_position:
            return "behind_caller_write"
        if fresh.caller is not None and (row is None or tuple(row[:-1]) != fresh.caller.expected):
            return "caller_changed"
        return None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction. Its last statement before COMMIT bumps the change counter of the
        organizations it changed (`infra/changes.py`); an exception rolls both back."""
        if self.write_gate is None:
            async with self.writer.connect() as conn:
                async with conn.begin():
                    # Audit entries and webhook events go in with the change counter's bump.
                    changes.start(conn, keep_back=True)
                    try:
                        yield conn
                        await changes.bump(conn)
                    finally:
                        changes.discard(conn)
                if self.replica is not None:
                    await self._note_commit(conn)
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

    @asynccontextmanager
    async def single_statement_write(self) -> AsyncIterator[AsyncConnection | None]:
        """A writer connection in autocommit for a write that is one statement and needs nothing
        else of a transaction (no audit entry, no change counter): its statement commits by itself,
        without the BEGIN and COMMIT round trips of `write()`. None where writes cannot run so
        (`autocommit_writes` is off): the caller uses `write()`. No write position is stored
        after it (infra/replica.py): use it only for rows no read on a replica looks for."""
        if not self.autocommit_writes:
            yield None
            return
        async with self.writer.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _note_commit(self, conn: AsyncConnection) -> None:
        """After a commit, with a replica: the commit's WAL position becomes the position the
        request's caller must see in their later reads, in this request and, stored on the primary,
        in every later one through any API process (read-your-writes, infra/replica.py)."""
        fresh = current_freshness()
        if fresh is None or fresh.user_id is None or fresh.organization_id is None:
            return
        try:
            raw = await conn.get_raw_connection()
            # The driver connection directly: one round trip, no BEGIN/ROLLBACK around it.
            driver: Any = raw.driver_connection
            position = int(
                await driver.fetchval(STORE_POSITION, fresh.organization_id, fresh.user_id)
            )
        except Exception as exc:
            # The write is committed; its caller's reads then go to the primary for this request.
            log.warning("write position not stored after a write: %s", type(exc).__name__)
            fresh.min_position = 2**63 - 1
            return
        fresh.min_position = max(fresh.min_position, position)
        fresh.verified = False

    async def dispose(self) -> None:
        await self.writer.dispose()
        await self.reader.dispose()
        if self.primary_reader is not None:
            await self.primary_reader.dispose()
