"""The text of what a write transaction leaves to its last statement (`infra/last_statement.py`
keeps the rows, updates and checks and decides when they run; this module writes their SQL).

Every statement here is built from the models' own table and column names and the callers' constant
conditions and queries, never from input, and written out once per shape: SQLAlchemy compiles a
statement with DML in its WITH again on every execution (it cannot cache those).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import SmallInteger, Uuid, bindparam, column, text
from sqlalchemy.sql.elements import BindParameter, TextClause
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeEngine

from therapy_scheduler.models.base import Base

# The change counter's bump of one stripe per organization, the statement everything here rides on
# (`infra/changes.py`); `{values}`: one `(:org<j>, :stripe, 1)` per organization.
COUNTER_UPSERT = (
    "INSERT INTO change_counters (organization_id, stripe, version) VALUES {values} "
    "ON CONFLICT (organization_id, stripe) DO UPDATE SET version = change_counters.version + 1"
)


@functools.lru_cache(maxsize=64)
def update_statement(name: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> TextClause:
    return text(update_sql(0, name, columns, keys)).bindparams(
        *update_binds(0, name, columns, keys)
    )


def update_sql(i: int, name: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    # Names of the models' own tables and columns (checked in `_update_binds`), never input.
    assigned = ", ".join(f'"{c}" = :u{i}_s_{c}' for c in columns)
    matched = " AND ".join(f'"{c}" = :u{i}_w_{c}' for c in keys)
    return f'UPDATE "{name}" SET {assigned} WHERE {matched}'  # noqa: S608


def update_binds(
    i: int, name: str, columns: tuple[str, ...], keys: tuple[str, ...]
) -> list[BindParameter[Any]]:
    table = Base.metadata.tables[name]
    binds = [bindparam(f"u{i}_s_{c}", type_=table.c[c].type) for c in columns]
    return binds + [bindparam(f"u{i}_w_{c}", type_=table.c[c].type) for c in keys]


# The bind parameters of a check's query: name → (value, type).
Values = dict[str, tuple[Any, TypeEngine[Any]]]


def check_query(query: str, prefix: str, values: Values) -> TextClause:
    binds = [bindparam(f"{prefix}{name}", type_=kind) for name, (_, kind) in values.items()]
    return text(query.format(q=prefix)).bindparams(*binds)


_NAMED = re.compile(r":\{row\}(\w+)")


@functools.lru_cache(maxsize=64)
def named(only_if: str) -> tuple[str, ...]:
    """The row's columns a condition names (`:{row}<column>`), each once, in order."""
    return tuple(dict.fromkeys(_NAMED.findall(only_if)))


@functools.lru_cache(maxsize=256)
def inserts(
    shape: tuple[tuple[str, tuple[str, ...], str | None], ...],
    organizations: int,
    *,
    conditions: tuple[tuple[str, str], ...] = (),
    checks: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, TypeEngine[Any]], ...]], ...] = (),
    updates: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (),
) -> TextualSelect:
    """The kept-back rows (`shape`: each row's table, columns and condition; bind parameters
    `k<i>_<column>`) as one statement, each row's INSERT returning 1 when written. With
    `organizations` > 0 (PostgreSQL): data-modifying WITHs, then the bump of that many
    organizations' stripe (`org<j>`, `stripe`), returning for each row whether it was written, then
    whether each of `conditions` holds (each a table and a condition on that table's columns, bound
    as `w<j>_<column>`), then the columns of each of `checks` (`check_last`: query, columns; bind
    parameters `c<j>_<name>`); `updates` (`update_later`: table, columns set, key columns) are
    data-modifying WITHs too. With 0: the one row's INSERT alone (either database). Written out
    once per shape: SQLAlchemy compiles a statement with DML in its WITH again on every execution
    (it cannot cache those), which cost more than the round trip it saves."""
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
        return text(inserts[0]).bindparams(*binds).columns(column("written"))
    parts = [f"k{i} AS ({statement})" for i, statement in enumerate(inserts)]
    returned = [f"(SELECT count(*) FROM k{i})" for i in range(len(inserts))]  # noqa: S608
    for j, (name, only_if) in enumerate(conditions):
        table = Base.metadata.tables[name]
        binds += [bindparam(f"w{j}_{c}", type_=table.c[c].type) for c in named(only_if)]
        returned.append(f"({only_if.format(row=f'w{j}_')})")
    for i, (name, columns, keys) in enumerate(updates):
        parts.append(f"u{i} AS ({update_sql(i, name, columns, keys)})")
        binds += update_binds(i, name, columns, keys)
    for j, (query, columns, kinds) in enumerate(checks):
        parts.append(f"c{j} AS ({query.format(q=f'c{j}_')})")
        binds += [bindparam(f"c{j}_{name}", type_=kind) for name, kind in kinds]
        returned += [f"(SELECT {c} FROM c{j})" for c in columns]  # noqa: S608
    counted = ", ".join(f"(:org{j}, :stripe, 1)" for j in range(organizations))
    binds += [bindparam("stripe", type_=SmallInteger())]
    binds += [bindparam(f"org{j}", type_=Uuid()) for j in range(organizations)]
    with_ = f"WITH {', '.join(parts)} " if parts else ""
    # Built from the models' names and the callers' constant conditions and queries only.
    statement = f"{with_}{COUNTER_UPSERT.format(values=counted)} RETURNING {', '.join(returned)}"
    # Its returned columns untyped (values as the driver gives them), by position; a SELECT's
    # shape, so that it runs on the driver (infra/driver_read.py).
    return (
        text(statement).bindparams(*binds).columns(*(column(f"r{i}") for i in range(len(returned))))
    )
