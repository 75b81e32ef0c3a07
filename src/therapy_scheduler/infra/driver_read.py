"""The hottest read statements, executed on the pooled connection's driver (asyncpg, aiosqlite)
instead of through SQLAlchemy's execution (docs/DECISIONS.md, "Hot reads on the driver").

A `DriverRead` is a SELECT compiled once for a dialect. Each execution converts the parameters
with the compiled statement's own bind processors, sends the same SQL to the driver of the
request's pooled connection (asyncpg: a statement prepared once per connection, from asyncpg's
statement cache; aiosqlite: cursor, execute, fetch and close in one hand-off to its thread instead
of four) and converts the row with the result processors of the statement's column types: the
values are those `conn.execute(statement, values)` returns. What stays SQLAlchemy's:

- the connection (the pool, its checkout test, the replica routing of `Database.read()`);
- errors: a driver error goes through the connection's own error handling (wrapped as a
  `DBAPIError`, the pool invalidated on a disconnect), so an outage is still a 503;
- the engine's `before_cursor_execute` / `after_cursor_execute` events, fired when anyone listens
  (the tests that count statements, `bench.booking_inprocess`).

Statements with expanding or literal-execute parameters (`IN` lists) and PgBouncer mode (reads in
a transaction, statements not prepared by name) go through `conn.execute` as usual.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

_Processor = Callable[[Any], Any] | None


class DriverRead:
    """One SELECT returning exactly one row, run on the driver (see the module's docstring)."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        self.statement = statement
        self.dialect = dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._compiled = compiled
        self._direct = (
            dialect.name in ("postgresql", "sqlite")
            and not compiled.post_compile_params
            and not compiled.literal_execute_params
            and compiled.positiontup is not None
        )
        names = list(compiled.positiontup or ())
        binds = compiled.binds
        self._positions: list[tuple[str, _Processor]] = [
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
        ]
        columns = list(statement.selected_columns)
        self._types = [column.type.dialect_impl(dialect) for column in columns]
        # Unlabelled columns (no key) are reached by position only.
        keys = [column.key or f"_{i}" for i, column in enumerate(columns)]
        self.Row: type[Any] = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        # Per-column result conversions, known once the column types the server sends are
        # (asyncpg: from the prepared statement; SQLite sends none).
        self._results: list[_Processor] | None = None

    def _parameters(self, values: Mapping[str, Any]) -> list[Any]:
        params = self._compiled.construct_params(values)
        return [
            params[name] if process is None else process(params[name])
            for name, process in self._positions
        ]

    def _row(self, raw: Sequence[Any]) -> Any:
        processors = self._results
        assert processors is not None
        return self.Row._make(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, processors, strict=True)
        )

    def _set_results(self, type_codes: Sequence[Any]) -> None:
        self._results = [
            type_.result_processor(self.dialect, code)
            for type_, code in zip(self._types, type_codes, strict=True)
        ]

    async def one(self, conn: AsyncConnection, values: Mapping[str, Any]) -> Any:
        """The statement's one row for `values` (a named tuple with the statement's column keys)."""
        sync = conn.sync_connection
        if not self._direct or sync is None or sync.dialect is not self.dialect:
            return (await conn.execute(self.statement, dict(values))).one()
        fairy = await conn.get_raw_connection() if sync.invalidated else sync.connection
        driver: Any = fairy.driver_connection
        adapted: Any = fairy.dbapi_connection
        if self.dialect.name == "postgresql" and not adapted.autocommit:
            # Reads in a transaction (PgBouncer mode): the adapter begins it and keeps its state.
            return (await conn.execute(self.statement, dict(values))).one()
        params = self._parameters(values)
        listening = bool(sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute)
        if listening:
            sync.dispatch.before_cursor_execute(sync, None, self.sql, params, None, False)
        try:
            if self.dialect.name == "postgresql":
                if self._results is None:
                    prepared = await driver.prepare(self.sql)
                    self._set_results([a.type.oid for a in prepared.get_attributes()])
                raw = await driver.fetchrow(self.sql, *params)
                rows = [] if raw is None else [raw]
            else:
                if self._results is None:
                    self._set_results([None] * len(self._types))
                rows = list(await driver.execute_fetchall(self.sql, params))
        except BaseException as error:
            # As SQLAlchemy does: a cancellation mid-statement leaves the connection in an unknown
            # state, so it is invalidated like a disconnect.
            await conn.run_sync(_raise_from_driver, error, self.sql, params)
            raise  # not reached: the handler always raises
        if listening:
            sync.dispatch.after_cursor_execute(sync, None, self.sql, params, None, False)
        if len(rows) != 1:
            # The same error `Result.one()` raises.
            return (await conn.execute(self.statement, dict(values))).one()
        return self._row(rows[0])


def _raise_from_driver(sync: Connection, error: BaseException, sql: str, params: Any) -> None:
    """A driver error as SQLAlchemy raises it from `execute`: the dialect's DBAPI exception (the
    asyncpg adapter translates asyncpg's own), then the connection's error handling (a
    `DBAPIError`, the connection invalidated when the error means it is gone)."""
    adapted: Any = sync.connection.dbapi_connection
    try:
        translate = getattr(adapted, "_handle_exception", None)
        if translate is not None and isinstance(error, Exception):
            translate(error)
        raise error
    except BaseException as translated:
        sync._handle_dbapi_exception(translated, sql, params, None, None)


@functools.lru_cache(maxsize=512)
def driver_read(statement: Select[Any], dialect: Dialect) -> DriverRead:
    """The `DriverRead` of a long-lived (cached) statement for an engine's dialect."""
    return DriverRead(statement, dialect)
