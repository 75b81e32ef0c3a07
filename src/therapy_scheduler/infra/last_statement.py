"""What a write transaction leaves to its last statement (docs/DECISIONS.md, "Conditional requests").

Rows it adds and never reads back (`insert_later`: an audit entry, a webhook event, a freed slot),
updates of rows it never reads back (`update_later`: an Idempotency-Key's stored response) and checks
that must read after a lock taken at its end (`check_last`: the hold cap). Inside `Database.write()`
on PostgreSQL they ride on the change counter's bump (`infra/changes.py` `bump`), which is the
transaction's last statement anyway: data-modifying WITHs of one statement, at no round trip of their
own; elsewhere they run at once. Their SQL is written by `infra/last_statement_sql.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra import last_statement_sql as sql
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models.base import Base

_KEPT = "therapy_scheduler.last_statement.kept_back"
_MAX_KEPT = 50  # rows kept back at most (one statement's bind parameters stay far below limits)
_CHECKS = "therapy_scheduler.last_statement.checks"
_UPDATES = "therapy_scheduler.last_statement.updates"


def begin(conn: AsyncConnection, *, keep_back: bool) -> None:
    """A write transaction begins: with `keep_back`, what is given to `insert_later`,
    `update_later` and `check_last` waits for `run_with_bump` (PostgreSQL)."""
    discard(conn)
    if keep_back:
        conn.info[_KEPT] = []


def discard(conn: AsyncConnection) -> None:
    """The transaction is over: nothing kept back outlives it (after a rollback, say)."""
    conn.info.pop(_KEPT, None)
    conn.info.pop(_CHECKS, None)
    conn.info.pop(_UPDATES, None)


@dataclass
class Kept:
    """A row given to `insert_later`: `written` once its INSERT ran (False when its condition did not
    hold), None before."""

    written: bool | None = None


# A kept-back row: its table, its values, its condition (see `insert_later`) and its handle.
_Row = tuple[str, dict[str, Any], str | None, Kept]


async def insert_later(
    conn: AsyncConnection, table: type[Base], row: dict[str, Any], *, only_if: str | None = None
) -> Kept:
    """Insert `row` into `table` in this transaction: now, or, when the transaction keeps rows back
    (`start`), with its last statement (`bump`), so that an audit entry, a webhook event or a freed
    slot cost no round trip of their own. Only for rows nothing in the transaction reads back.

    `only_if`: an SQL condition the row is written under, evaluated by the same statement; it names
    the row's own values as `:{row}<column>` (e.g. `EXISTS (SELECT 1 FROM waitlist_entries WHERE
    organization_id = :{row}organization_id)`). The handle says, after the transaction's last
    statement, whether the row was written."""
    handle = Kept()
    kept: list[_Row] | None = conn.info.get(_KEPT)
    if kept is None:
        await _insert_now(conn, (table.__tablename__, row, only_if, handle))
        return handle
    kept.append((table.__tablename__, row, only_if, handle))
    if len(kept) >= _MAX_KEPT:
        for item in kept:
            await _insert_now(conn, item)
        kept.clear()
    return handle


# Rows of one call to `insert_rows_later` that still ride on the last statement (each is a WITH of
# its own there); more go in at once, in one multi-row INSERT.
FEW_ROWS = 4


async def insert_rows_later(
    conn: AsyncConnection, table: type[Base], rows: list[dict[str, Any]]
) -> None:
    """`insert_later` of each of `rows` (same columns, no condition) when they are at most
    `FEW_ROWS`; more (a long recurrence) are inserted now by one multi-row INSERT, after the rows
    kept back so far (in the order they were given: a row may reference one kept before it)."""
    kept: list[_Row] | None = conn.info.get(_KEPT)
    if kept is not None and len(rows) <= FEW_ROWS and len(kept) + len(rows) < _MAX_KEPT:
        kept += [(table.__tablename__, row, None, Kept()) for row in rows]
        return
    if kept:
        for item in kept:
            await _insert_now(conn, item)
        kept.clear()
    if rows:
        await conn.execute(insert(table), rows)


async def insert_kept_now(conn: AsyncConnection, table: type[Base]) -> None:
    """Insert now, in the order given, the rows of `table` this transaction kept back (without a
    condition), for a statement that is about to read them back; the other kept rows stay kept."""
    kept: list[_Row] | None = conn.info.get(_KEPT)
    if not kept:
        return
    name = table.__tablename__
    now = [item for item in kept if item[0] == name and item[2] is None]
    if not now:
        return
    kept[:] = [item for item in kept if not (item[0] == name and item[2] is None)]
    for item in now:
        await _insert_now(conn, item)


async def _insert_now(conn: AsyncConnection, item: _Row) -> None:
    name, row, only_if, handle = item
    result = await conn.execute(sql.inserts(((name, tuple(row), only_if),), 0), _values([item]))
    handle.written = result.first() is not None


def _values(rows: list[_Row]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, (_, row, _, _) in enumerate(rows):
        values |= {f"k{i}_{column}": value for column, value in row.items()}
    return values


# An update given to `update_later`: its table, the values it sets and the key that picks its row.
_Update = tuple[str, dict[str, Any], dict[str, Any]]


async def update_later(
    conn: AsyncConnection, table: type[Base], values: dict[str, Any], *, where: dict[str, Any]
) -> None:
    """Set `values` in the rows of `table` whose columns equal `where`, in this transaction: now,
    or, when the transaction keeps rows back (`start`), with its last statement (`run_with_bump`), like
    `insert_later`. Only for rows that nothing later in the transaction reads, and whose update
    needs no answer (how many rows it changed is not told)."""
    item: _Update = (table.__tablename__, values, where)
    updates: list[_Update] | None = conn.info.get(_UPDATES)
    if conn.info.get(_KEPT) is None or conn.dialect.name != "postgresql":
        await _update_now(conn, item)
        return
    if updates is None:
        updates = conn.info[_UPDATES] = []
    updates.append(item)


async def _update_now(conn: AsyncConnection, item: _Update) -> None:
    name, values, where = item
    await conn.execute(
        sql.update_statement(name, tuple(values), tuple(where)), _update_values(0, item)
    )


def _update_values(i: int, item: _Update) -> dict[str, Any]:
    _, values, where = item
    return {f"u{i}_s_{c}": v for c, v in values.items()} | {
        f"u{i}_w_{c}": v for c, v in where.items()
    }


# A check given to `check_last`: its query (one row; columns named), the query's values, and the
# function the row is given to.
_Check = tuple[str, tuple[str, ...], sql.Values, Callable[[tuple[Any, ...]], None]]


async def check_last(
    conn: AsyncConnection,
    query: str,
    columns: tuple[str, ...],
    values: sql.Values,
    check: Callable[[tuple[Any, ...]], None],
) -> None:
    """Read `query` (an SQL SELECT of exactly one row whose columns are named `columns`; its bind
    parameters written `:{q}<name>`, their values and types in `values`) with the transaction's
    last statement and give its row to `check` before COMMIT: an exception from `check` rolls the
    transaction back.
    On PostgreSQL, when rows are kept back, the query rides in the bump's own statement (one round
    trip less after a lock taken just before, docs/PERFORMANCE.md, "What limits each figure": booking);
    otherwise it runs at once. It sees what committed before its statement began and what this
    transaction wrote before it, not the kept-back rows its statement inserts."""
    checks: list[_Check] | None = conn.info.get(_CHECKS)
    if conn.info.get(_KEPT) is None or conn.dialect.name != "postgresql":
        given = {name: value for name, (value, _) in values.items()}
        check(tuple((await conn.execute(sql.check_query(query, "", values), given)).one()))
        return
    if checks is None:
        checks = conn.info[_CHECKS] = []
    checks.append((query, columns, values, check))


async def run_with_bump(conn: AsyncConnection, organizations: list[uuid.UUID], stripe: int) -> bool:
    """Before the bump of `organizations`' `stripe`: what the transaction kept back. On PostgreSQL
    with rows kept back it runs as one statement that is also the bump (True: the bump is done);
    otherwise it runs now and the caller bumps (False).

    A kept-back row with a condition (`only_if`) whose condition did not hold the last time this
    process evaluated it (with the same values) is not sent with that statement: the statement only
    evaluates the condition (once per condition and values), and the rows whose condition held are
    inserted right after it, before COMMIT. So a condition that seldom holds (a freed slot while
    nobody waits, docs/DECISIONS.md "The cancel and the waitlist") costs the transaction one more
    column of its last statement, not the row's values and its INSERT; a row whose condition held
    last time goes in with the statement, under its condition. Either way the condition is
    evaluated in this transaction: what the process remembers only chooses the cheaper way."""
    rows: list[_Row] = conn.info.pop(_KEPT, None) or []
    checks: list[_Check] = conn.info.pop(_CHECKS, None) or []
    updates: list[_Update] = conn.info.pop(_UPDATES, None) or []
    if organizations and rows and conn.dialect.name == "postgresql":
        await _bump_with_rows(conn, organizations, rows, checks, updates, stripe)
        return True
    for update in updates:  # (only kept while rows are kept back)
        await _update_now(conn, update)
    for query, _, given, check in checks:
        plain = {name: value for name, (value, _) in given.items()}
        check(tuple((await conn.execute(sql.check_query(query, "", given), plain)).one()))
    for item in rows:
        await _insert_now(conn, item)
    return False


# A condition (table, condition, the values it names) -> whether it held the last time this process
# evaluated it: a guess, only to choose how a row under it goes in (`bump`), never its answer.
_Condition = tuple[str, str, tuple[Any, ...]]
_LAST_HELD: dict[_Condition, bool] = {}
_MAX_REMEMBERED = 4096


def _remember(condition: _Condition, held: bool) -> None:
    if condition not in _LAST_HELD and len(_LAST_HELD) >= _MAX_REMEMBERED:
        _LAST_HELD.clear()
    _LAST_HELD[condition] = held


async def _bump_with_rows(
    conn: AsyncConnection,
    organizations: list[uuid.UUID],
    rows: list[_Row],
    checks: list[_Check],
    updates: list[_Update],
    stripe: int,
) -> None:
    """`bump` on PostgreSQL with kept-back rows: one statement (the rows sent with it, the
    conditions it evaluates, the updates, the checks' queries, the bump), then the checks, then the
    rows whose condition that statement found holding."""
    sent: list[tuple[_Row, _Condition | None]] = []  # with the statement (under their condition)
    conditions: dict[_Condition, int] = {}  # evaluated by the statement, in this order
    held_back: list[tuple[_Row, int]] = []  # inserted after it if their condition holds
    for item in rows:
        name, row, only_if, _ = item
        if only_if is None:
            sent.append((item, None))
            continue
        condition = (name, only_if, tuple(row[c] for c in sql.named(only_if)))
        if _LAST_HELD.get(condition, False):
            sent.append((item, condition))
        else:
            held_back.append((item, conditions.setdefault(condition, len(conditions))))
    shape = tuple((name, tuple(row), only_if) for (name, row, only_if, _), _ in sent)
    checked = tuple(
        (query, columns, tuple((name, kind) for name, (_, kind) in given.items()))
        for query, columns, given, _ in checks
    )
    changed = tuple((name, tuple(given), tuple(where)) for name, given, where in updates)
    values = _values([item for item, _ in sent]) | {"stripe": stripe}
    values |= {f"org{j}": o for j, o in enumerate(organizations)}
    for j, (_, only_if, named) in enumerate(conditions):
        values |= {f"w{j}_{c}": v for c, v in zip(sql.named(only_if), named, strict=True)}
    for j, (_, _, given, _) in enumerate(checks):
        values |= {f"c{j}_{name}": value for name, (value, _) in given.items()}
    for i, update in enumerate(updates):
        values |= _update_values(i, update)
    statement = sql.inserts(
        shape,
        len(organizations),
        conditions=tuple((name, only_if) for name, only_if, _ in conditions),
        checks=checked,
        updates=changed,
    )
    result = await driver_read(statement, conn.dialect).first(conn, values)
    if result is None:  # no organization's row came back: cannot happen, but never skip a check
        raise RuntimeError("the change counter's bump returned no row")
    for i, ((_, _, _, handle), under) in enumerate(sent):
        handle.written = bool(result[i])
        if under is not None:
            _remember(under, handle.written)
    at = len(sent)
    for condition, j in conditions.items():
        _remember(condition, bool(result[at + j]))
    at += len(conditions)
    for _, columns, _, check in checks:
        check(tuple(result[at : at + len(columns)]))
        at += len(columns)
    for (name, row, _, handle), j in held_back:
        handle.written = bool(result[len(sent) + j])
        if handle.written:
            await conn.execute(
                sql.inserts(((name, tuple(row), None),), 0), _values([(name, row, None, handle)])
            )
