"""The change counter: every write transaction bumps the version of each organization it changed.

The read endpoints build their ETags from it (`infra/conditional.py`). `Database.write()` calls
`start` when a write transaction begins and `bump` as its last statement before COMMIT, so that the
new version commits atomically with the change (docs/DECISIONS.md, "Conditional requests").

A write registers the organizations it changes with `touch`. Every audited write does so through
`infra/audit_log.py`; the few unaudited ones (the hold purge, the import, the demo's records) call
`touch` themselves. As a safety net, a transaction that inserted, updated or deleted rows of a table
that answers depend on without registering any organization bumps every organization's version
(correct, only coarser) and logs the tables, so that the missing `touch` is found.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, SmallInteger, Uuid, bindparam, event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import BindParameter, TextClause

from therapy_scheduler.models import ChangeCounter
from therapy_scheduler.models.base import Base

log = logging.getLogger("therapy_scheduler.changes")

# A version is the sum of its organization's stripes: concurrent writers of one organization update
# different rows (PostgreSQL row locks), and a sum of counters that only grow grows with each write.
STRIPES = 16

# Tables whose rows no answer with an ETag shows: writing them alone changes no version.
UNVERSIONED_TABLES = frozenset(
    {
        "change_counters",
        "idempotency_records",
        "audit_events",
        "audit_event_clients",
        # the webhook outbox and its deliveries (docs/WEBHOOKS.md)
        "webhook_endpoints",
        "webhook_events",
        "webhook_deliveries",
        "webhook_attempts",
        # the waitlist and its outbox of freed slots (docs/WAITLIST.md); its offers are holds
        "waitlist_entries",
        "waitlist_offers",
        "freed_slots",
    }
)

_TOUCHED = "therapy_scheduler.changes.touched"
_KEPT = "therapy_scheduler.changes.kept_back"
_MAX_KEPT = 50  # rows kept back at most (one statement's bind parameters stay far below limits)
_WRITTEN = "therapy_scheduler.changes.written"

_BUMP = text(
    "INSERT INTO change_counters (organization_id, stripe, version) VALUES (:org, :stripe, 1) "
    "ON CONFLICT (organization_id, stripe) DO UPDATE SET version = change_counters.version + 1"
).bindparams(bindparam("org", type_=Uuid()))
# Also for tools that change data outside `Database.write()` (bench/harness.py's clean-up).
BUMP_EVERY_ORGANIZATION = (
    "INSERT INTO change_counters (organization_id, stripe, version) "
    "SELECT id, :stripe, 1 FROM organizations WHERE true "
    "ON CONFLICT (organization_id, stripe) DO UPDATE SET version = change_counters.version + 1"
)
_BUMP_ALL = text(BUMP_EVERY_ORGANIZATION)
_VERSION = text(
    "SELECT coalesce(sum(version), 0) FROM change_counters WHERE organization_id = :org"
).bindparams(bindparam("org", type_=Uuid()))


def touch(conn: AsyncConnection | Connection, organization_id: uuid.UUID) -> None:
    """Register that this write transaction changes `organization_id`'s data."""
    touched = conn.info.get(_TOUCHED)
    if touched is None:
        touched = conn.info[_TOUCHED] = set()
    touched.add(organization_id)


def start(conn: AsyncConnection, *, keep_back: bool = False) -> None:
    """A write transaction begins (the connection's `info` outlives it in the pool). `keep_back`:
    rows given to `insert_later` are inserted by the bump's own statement (PostgreSQL)."""
    conn.info[_TOUCHED] = set()
    conn.info[_WRITTEN] = set()
    if keep_back:
        conn.info[_KEPT] = []
    else:
        conn.info.pop(_KEPT, None)


def discard(conn: AsyncConnection) -> None:
    """The transaction is over: nothing kept back outlives it (after a rollback, say)."""
    conn.info.pop(_KEPT, None)


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


async def _insert_now(conn: AsyncConnection, item: _Row) -> None:
    name, row, only_if, handle = item
    result = await conn.execute(_inserts(((name, tuple(row), only_if),), 0), _values([item]))
    handle.written = result.first() is not None


def _values(rows: list[_Row]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, (_, row, _, _) in enumerate(rows):
        values |= {f"k{i}_{column}": value for column, value in row.items()}
    return values


async def bump(conn: AsyncConnection) -> None:
    """Add 1 to one stripe of every organization the transaction touched (sorted, so that two
    transactions never wait on each other's stripes in opposite orders). Run last before COMMIT:
    on PostgreSQL the stripe's row lock is then held for the COMMIT only. The rows kept back
    (`insert_later`) go in first: by the same statement on PostgreSQL (data-modifying WITHs).

    A kept-back row with a condition (`only_if`) whose condition did not hold the last time this
    process evaluated it (with the same values) is not sent with that statement: the statement only
    evaluates the condition (once per condition and values), and the rows whose condition held are
    inserted right after it, before COMMIT. So a condition that seldom holds (a freed slot while
    nobody waits, docs/DECISIONS.md "The cancel and the waitlist") costs the transaction one more
    column of its last statement, not the row's values and its INSERT; a row whose condition held
    last time goes in with the statement, under its condition. Either way the condition is
    evaluated in this transaction: what the process remembers only chooses the cheaper way."""
    touched: set[uuid.UUID] = conn.info.pop(_TOUCHED, None) or set()
    written: set[str] = conn.info.pop(_WRITTEN, None) or set()
    rows: list[_Row] = conn.info.pop(_KEPT, None) or []
    stripe = random.randrange(STRIPES)  # noqa: S311 - spreads writers; not a secret
    if touched and rows and conn.dialect.name == "postgresql":
        await _bump_with_rows(conn, sorted(touched), rows, stripe)
        return
    for item in rows:
        await _insert_now(conn, item)
    if touched:
        await conn.execute(_BUMP, [{"org": o, "stripe": stripe} for o in sorted(touched)])
    elif written:
        log.warning(
            "a write to %s registered no organization; every version bumped",
            ", ".join(sorted(written)),
        )
        await conn.execute(_BUMP_ALL, {"stripe": stripe})


# A condition (table, condition, the values it names) -> whether it held the last time this process
# evaluated it: a guess, only to choose how a row under it goes in (`bump`), never its answer.
_Check = tuple[str, str, tuple[Any, ...]]
_LAST_HELD: dict[_Check, bool] = {}
_MAX_REMEMBERED = 4096


def _remember(check: _Check, held: bool) -> None:
    if check not in _LAST_HELD and len(_LAST_HELD) >= _MAX_REMEMBERED:
        _LAST_HELD.clear()
    _LAST_HELD[check] = held


async def _bump_with_rows(
    conn: AsyncConnection, organizations: list[uuid.UUID], rows: list[_Row], stripe: int
) -> None:
    """`bump` on PostgreSQL with kept-back rows: one statement, then the rows whose condition that
    statement found holding."""
    # With the statement (under their condition, if any):
    sent: list[tuple[_Row, _Check | None]] = []
    checks: dict[_Check, int] = {}  # evaluated by the statement, in this order
    checked: list[tuple[_Row, int]] = []  # inserted after it if their check holds
    for item in rows:
        name, row, only_if, _ = item
        if only_if is None:
            sent.append((item, None))
            continue
        check = (name, only_if, tuple(row[c] for c in _named(only_if)))
        if _LAST_HELD.get(check, False):
            sent.append((item, check))
        else:
            checked.append((item, checks.setdefault(check, len(checks))))
    shape = tuple((name, tuple(row), only_if) for (name, row, only_if, _), _ in sent)
    conditions = tuple((name, only_if) for name, only_if, _ in checks)
    values = _values([item for item, _ in sent]) | {"stripe": stripe}
    values |= {f"org{j}": o for j, o in enumerate(organizations)}
    for j, (_, only_if, named) in enumerate(checks):
        values |= {f"c{j}_{c}": v for c, v in zip(_named(only_if), named, strict=True)}
    result = (await conn.execute(_inserts(shape, len(organizations), conditions), values)).first()
    assert result is not None  # one row per organization bumped
    for i, ((_, _, _, handle), under) in enumerate(sent):
        handle.written = bool(result[i])
        if under is not None:
            _remember(under, handle.written)
    for check, j in checks.items():
        _remember(check, bool(result[len(sent) + j]))
    for (name, row, _, handle), j in checked:
        handle.written = bool(result[len(sent) + j])
        if handle.written:
            await conn.execute(
                _inserts(((name, tuple(row), None),), 0), _values([(name, row, None, handle)])
            )


_NAMED = re.compile(r":\{row\}(\w+)")


@functools.lru_cache(maxsize=64)
def _named(only_if: str) -> tuple[str, ...]:
    """The row's columns a condition names (`:{row}<column>`), each once, in order."""
    return tuple(dict.fromkeys(_NAMED.findall(only_if)))


@functools.lru_cache(maxsize=256)
def _inserts(
    shape: tuple[tuple[str, tuple[str, ...], str | None], ...],
    organizations: int,
    conditions: tuple[tuple[str, str], ...] = (),
) -> TextClause:
    """The kept-back rows (`shape`: each row's table, columns and condition; bind parameters
    `k<i>_<column>`) as one statement, each row's INSERT returning 1 when written. With
    `organizations` > 0 (PostgreSQL): data-modifying WITHs, then the bump of that many
    organizations' stripe (`org<j>`, `stripe`), returning for each row whether it was written, then
    whether each of `conditions` holds (each a table and a condition on that table's columns, bound
    as `c<j>_<column>`). With 0: the one row's INSERT alone (either database). Written out once per
    shape: SQLAlchemy compiles a statement with DML in its WITH again on every execution (it cannot
    cache those), which cost more than the round trip it saves."""
    binds: list[BindParameter[Any]] = []
    inserts: list[str] = []
    for i, (name, columns, only_if) in enumerate(shape):
        table = Base.metadata.tables[name]
        listed = ", ".join(f'"{c}"' for c in columns)
        placeholders = ", ".join(f":k{i}_{c}" for c in columns)
        binds += [bindparam(f"k{i}_{c}", type_=table.c[c].type) for c in columns]  # KeyError if not
        # Names of the models' own tables and columns (looked up above), never input; conditions
        # are the callers' constants.
        source = (
            f"VALUES ({placeholders})"
            if only_if is None
            else f"SELECT {placeholders} WHERE {only_if.format(row=f'k{i}_')}"
        )
        inserts.append(f'INSERT INTO "{name}" ({listed}) {source} RETURNING 1')
    if organizations == 0:
        return text(inserts[0]).bindparams(*binds)
    returned = [f"(SELECT count(*) FROM k{i})" for i in range(len(inserts))]  # noqa: S608
    for j, (name, only_if) in enumerate(conditions):
        table = Base.metadata.tables[name]
        binds += [bindparam(f"c{j}_{c}", type_=table.c[c].type) for c in _named(only_if)]
        returned.append(f"({only_if.format(row=f'c{j}_')})")
    with_ = f"WITH {', '.join(f'k{i} AS ({s})' for i, s in enumerate(inserts))} " if inserts else ""
    counted = ", ".join(f"(:org{j}, :stripe, 1)" for j in range(organizations))
    binds += [bindparam("stripe", type_=SmallInteger())]
    binds += [bindparam(f"org{j}", type_=Uuid()) for j in range(organizations)]
    # Built from the models' names and the callers' constant conditions only.
    statement = (
        f"{with_}INSERT INTO change_counters (organization_id, stripe, version) VALUES {counted} "  # noqa: S608
        "ON CONFLICT (organization_id, stripe) DO UPDATE SET version = change_counters.version + 1"
        f" RETURNING {', '.join(returned)}"
    )
    return text(statement).bindparams(*binds)


async def current_version(conn: AsyncConnection, organization_id: uuid.UUID) -> int:
    """The organization's version as of this statement's snapshot."""
    return int((await conn.execute(_VERSION, {"org": organization_id})).scalar_one())


@functools.lru_cache(maxsize=512)
def with_version(statement: Select[Any], organization_param: str) -> Select[Any]:
    """`statement` with one more column, `change_version`: the version of the organization bound
    to `organization_param`, read in the statement's own snapshot (so exactly the version of the
    data the statement read). `statement` must be a cached (long-lived) object."""
    version = (
        select(func.coalesce(func.sum(ChangeCounter.version), 0))
        .where(ChangeCounter.organization_id == bindparam(organization_param, type_=Uuid()))
        .scalar_subquery()
    )
    return statement.add_columns(version.label("change_version"))


def watch_writes(engine: AsyncEngine) -> None:
    """Note the tables each statement of a write transaction inserts into, updates or deletes from
    (for the safety net of `bump`). Installed once per writer engine."""
    if event.contains(engine.sync_engine, "before_execute", _note_write):
        return
    event.listen(engine.sync_engine, "before_execute", _note_write)


def _note_write(conn: Connection, clause: Any, *_args: Any, **_kwargs: Any) -> None:
    written = conn.info.get(_WRITTEN)
    if written is None:
        return
    if getattr(clause, "is_dml", False):
        table = getattr(getattr(clause, "table", None), "name", None)
        if table is not None and table not in UNVERSIONED_TABLES:
            written.add(str(table))
    elif isinstance(clause, TextClause):
        words = clause.text.lstrip().split(None, 3)
        if words and words[0].lower() in {"insert", "update", "delete"}:
            name = words[2] if words[0].lower() != "update" else words[1]
            name = name.strip('"').split("(")[0]
            if name not in UNVERSIONED_TABLES:
                written.add(name)
