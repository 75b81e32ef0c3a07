"""The hottest statements, executed on the pooled connection's driver (asyncpg, aiosqlite)
instead of through SQLAlchemy's execution (docs/DECISIONS.md, "The hot read path": the hot reads
and every statement of a hold and a confirm).

A `DriverRead` is a SELECT (or a textual statement with its returned columns, such as a write
transaction's last statement) compiled once for a dialect. Each execution converts the parameters
with the compiled statement's own bind processors, sends the same SQL to the driver of the
request's pooled connection (asyncpg: a statement prepared once per connection, from asyncpg's
statement cache; aiosqlite: cursor, execute, fetch and close in one hand-off to its thread instead
of four) and converts the rows with the result processors of the statement's column types: the
values are those `conn.execute(statement, values)` returns. What stays SQLAlchemy's:

- the connection (the pool, its checkout test, the replica routing of `Database.read()`);
- errors: a driver error goes through the connection's own error handling (wrapped as a
  `DBAPIError`, the pool invalidated on a disconnect), so an outage is still a 503;
- the engine's `before_cursor_execute` / `after_cursor_execute` events, fired when anyone listens
  (the tests that count statements, `bench.booking_inprocess`).

Inside a transaction (PostgreSQL: a booking's) the statement runs in it, the transaction begun first
by SQLAlchemy's adapter, under its lock, when the statement is its first, as the adapter begins it
for its own first statement; its COMMIT or ROLLBACK stays SQLAlchemy's. Statements with expanding or
literal-execute parameters (`IN` lists) and PgBouncer mode (statements not prepared by name) go
through `conn.execute` as usual. A list of ids
that should not stop a statement from running on the driver is written with `in_ids`: one array
parameter on PostgreSQL, an expanding `IN` (so `conn.execute`) elsewhere.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, any_, bindparam, exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.selectable import TextualSelect

_Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a bind parameter without a value of its own
_Lookup = list[tuple[str, str, Any, _Processor]]
# A SELECT of any columns, a UNION of them, or a textual statement with its returned columns
# (`text(...).columns(...)`).
Readable = Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]] | TextualSelect


class DriverRead:
    """One SELECT run on the driver (see the module's docstring): its one row (`one`) or all its
    rows (`all`)."""

    def __init__(self, statement: Readable, dialect: Dialect) -> None:
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
        # Each position's value as `construct_params` finds it, without its walk over every
        # parameter per execution (docs/DECISIONS.md, "The hot read path").
        self._lookup = _lookup(compiled, self._positions)
        columns = list(statement.selected_columns)
        self._types = [column.type.dialect_impl(dialect) for column in columns]
        # Unlabelled columns (no key) are reached by position only.
        keys = [column.key or f"_{i}" for i, column in enumerate(columns)]
        self.Row: type[Any] = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        # Per-column result conversions, known once the column types the server sends are
        # (asyncpg: from the prepared statement; SQLite sends none).
        self._results: list[_Processor] | None = None

    def _parameters(self, values: Mapping[str, Any]) -> list[Any]:
        if self._lookup is not None and values:
            out = []
            for key, name, constant, process in self._lookup:
                if key in values:
                    value = values[key]
                elif name in values:
                    value = values[name]
                elif constant is _REQUIRED:
                    break
                else:
                    value = constant
                out.append(value if process is None else process(value))
            else:
                return out
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
        rows = await self._fetch(conn, values, one=True)
        if rows is None or len(rows) != 1:
            # Not run on the driver, or the same error `Result.one()` raises.
            return (await conn.execute(self.statement, dict(values))).one()
        return self._row(rows[0])

    async def first(self, conn: AsyncConnection, values: Mapping[str, Any]) -> Any:
        """The statement's first row for `values`, or None (as `Result.first()`); run once, so
        also for a statement that writes (a data-modifying `WITH`)."""
        rows = await self._fetch(conn, values, one=True)
        if rows is None:
            return (await conn.execute(self.statement, dict(values))).first()
        return self._row(rows[0]) if rows else None

    async def all(
        self,
        conn: AsyncConnection,
        values: Mapping[str, Any],
        make: Callable[[Iterable[Any]], Any] | None = None,
    ) -> list[Any]:
        """The statement's rows for `values`, each made by `make` from its values in column order
        (default: the statement's named tuple, as `one`). For the big row sets of a request (the
        week's busy sessions and calendars): a row costs `make` and, where a column type converts
        what the driver returns, its conversion, instead of a SQLAlchemy result row."""
        make = make or self.Row._make
        rows = await self._fetch(conn, values, one=False)
        if rows is None:
            return [make(row) for row in await conn.execute(self.statement, dict(values))]
        processors = self._results
        assert processors is not None
        if not any(processors):
            return [make(row) for row in rows]
        return [
            make(
                value if process is None or value is None else process(value)
                for value, process in zip(row, processors, strict=True)
            )
            for row in rows
        ]

    async def _fetch(
        self, conn: AsyncConnection, values: Mapping[str, Any], *, one: bool
    ) -> Sequence[Sequence[Any]] | None:
        """The driver's rows (unconverted), or None where the statement is not run on the driver
        (the caller then runs it through `conn.execute`)."""
        sync = conn.sync_connection
        if not self._direct or sync is None or sync.dialect is not self.dialect:
            return None
        fairy = await conn.get_raw_connection() if sync.invalidated else sync.connection
        driver: Any = fairy.driver_connection
        adapted: Any = fairy.dbapi_connection
        if self.dialect.name == "postgresql" and not adapted.autocommit:
            if adapted._prepared_statement_cache is None:
                # PgBouncer mode: no statement is prepared by name (infra/db.py).
                return None
            # In a transaction (a booking's): begun by the adapter as its own first statement
            # would begin it, which then commits or rolls it back.
            async with adapted._execute_mutex:
                if adapted._transaction is None:
                    try:
                        await adapted._start_transaction()
                    except BaseException as error:
                        await conn.run_sync(_raise_from_driver, error, "BEGIN", ())
                        raise  # not reached: the handler always raises
                return await self._run(conn, driver, values, one=one)
        return await self._run(conn, driver, values, one=one)

    async def _run(
        self, conn: AsyncConnection, driver: Any, values: Mapping[str, Any], *, one: bool
    ) -> Sequence[Sequence[Any]]:
        sync = conn.sync_connection
        assert sync is not None
        params = self._parameters(values)
        listening = bool(sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute)
        if listening:
            sync.dispatch.before_cursor_execute(sync, None, self.sql, params, None, False)
        rows: Sequence[Sequence[Any]]
        try:
            if self.dialect.name == "postgresql":
                if self._results is None:
                    prepared = await driver.prepare(self.sql)
                    self._set_results([a.type.oid for a in prepared.get_attributes()])
                if one:
                    raw = await driver.fetchrow(self.sql, *params)
                    rows = [] if raw is None else [raw]
                else:
                    rows = await driver.fetch(self.sql, *params)
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
        return rows


def _lookup(compiled: Any, positions: list[tuple[str, _Processor]]) -> _Lookup | None:
    """For each position: the parameter's key, its name, its own constant value (a literal's) or
    `_REQUIRED`, and its bind processor; the caller's value is found under the key, then the name
    (as `construct_params` finds it). None unless that gives what `construct_params` gives for a
    probe (a statement with parameters of computed values or values set on the statement itself)."""
    binds = compiled.binds
    if any(binds[name].callable for name, _ in positions):
        return None
    lookup = [
        (
            binds[name].key,
            name,
            _REQUIRED if binds[name].required else binds[name].value,
            process,
        )
        for name, process in positions
    ]
    probe: dict[str, Any] = {"\x00probe": None}
    probe |= {bind.key: object() for bind in binds.values() if bind.required}
    try:
        expected = compiled.construct_params(probe)
    except exc.SQLAlchemyError:
        return None
    for key, name, constant, _ in lookup:
        if expected[name] is not (probe[key] if constant is _REQUIRED else constant):
            return None
    return lookup


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
def driver_read(statement: Readable, dialect: Dialect) -> DriverRead:
    """The `DriverRead` of a long-lived (cached) statement for an engine's dialect."""
    return DriverRead(statement, dialect)


def in_ids(
    column: ColumnElement[Any] | QueryableAttribute[Any], name: str, dialect_name: str
) -> ColumnElement[bool]:
    """`column IN` the list bound as `name`: on PostgreSQL `column = ANY(name)` with one array
    parameter, so that the statement has no expanding parameter and runs on the driver, prepared
    once whatever the number of ids; elsewhere an expanding `IN`."""
    if dialect_name == "postgresql":
        element = column.expression if isinstance(column, QueryableAttribute) else column
        return element == any_(bindparam(name, type_=ARRAY(element.type)))
    return column.in_(bindparam(name, expanding=True))
