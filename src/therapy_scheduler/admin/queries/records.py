"""What the admin resources' SQL shares: keyset pages, name search, and the read / insert / update of
one record of an organization's table.

Every statement is limited to one organization, so another organization's id reads like an id that
does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.errors import InvalidCursor
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor

R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a list, and the cursor of the next one (None on the last page)."""

    rows: list[R]
    next_cursor: str | None


async def keyset_page(
    conn: AsyncConnection,
    query: Select[Any],
    *,
    kind: str,
    id_column: Any,
    sort_columns: Sequence[Any],
    cursor: str | None,
    limit: int,
    make: Callable[[Row[Any]], R],
    descending: bool = False,
) -> Page[R]:
    """Rows of `query` (each made into an `R` by `make`) after the cursor's row, ordered by
    `sort_columns` then id.

    The cursor names only the last row's id; its sort key is read back within the same filters, so a
    cursor from another organization or list is refused like a malformed one.
    """
    keys = [*sort_columns, id_column]
    if cursor is not None:
        (after,) = decode_cursor(kind, cursor, (uuid.UUID,))
        anchor = (
            await conn.execute(query.with_only_columns(*keys).where(id_column == after))
        ).first()
        if anchor is None:
            raise InvalidCursor("The cursor is not valid; start again from the first page")
        position = tuple_(*keys)
        query = query.where(position < tuple(anchor) if descending else position > tuple(anchor))
    order = [k.desc() for k in keys] if descending else keys
    rows = list((await conn.execute(query.order_by(*order).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return Page(
        [make(r) for r in rows],
        encode_cursor(kind, last._mapping[id_column.key]) if last else None,
    )


def name_filter(column: Any, q: str) -> ColumnElement[bool]:
    """Case-insensitive substring search; % and _ in the search text are literal."""
    result: ColumnElement[bool] = func.lower(column).contains(q.lower(), autoescape=True)
    return result


@dataclass(frozen=True)
class Table(Generic[R]):
    """An organization's table whose records are read whole, as `R` (a named tuple whose fields
    are the table's columns, in the table's order)."""

    model: Any  # the mapped class
    fields: tuple[str, ...]  # R's fields
    make: Callable[[Iterable[Any]], R]
    sort_column: Any  # lists are sorted by this column, then id

    def in_org(self, organization_id: uuid.UUID) -> ColumnElement[bool]:
        clause: ColumnElement[bool] = self.model.organization_id == organization_id
        return clause

    def query(self, organization_id: uuid.UUID) -> Select[Any]:
        columns = self.model.__table__.columns
        return select(*(columns[f] for f in self.fields)).where(self.in_org(organization_id))


async def load(
    conn: AsyncConnection, table: Table[R], organization_id: uuid.UUID, record_id: uuid.UUID
) -> R | None:
    """The record if it belongs to the organization."""
    row = (
        await conn.execute(table.query(organization_id).where(table.model.id == record_id))
    ).first()
    return None if row is None else table.make(row)


async def page(
    conn: AsyncConnection,
    table: Table[R],
    organization_id: uuid.UUID,
    filters: Sequence[ColumnElement[bool]],
    *,
    kind: str,
    cursor: str | None,
    limit: int,
) -> Page[R]:
    """A keyset page of the organization's records matching `filters`, by sort column then id."""
    return await keyset_page(
        conn,
        table.query(organization_id).where(*filters),
        kind=kind,
        id_column=table.model.id,
        sort_columns=[table.sort_column],
        cursor=cursor,
        limit=limit,
        make=table.make,
    )


async def insert_record(
    conn: AsyncConnection,
    table: Table[Any],
    organization_id: uuid.UUID,
    record_id: uuid.UUID,
    values: dict[str, Any],
) -> None:
    await conn.execute(
        insert(table.model).values(id=record_id, organization_id=organization_id, **values)
    )


async def update_record(
    conn: AsyncConnection,
    table: Table[Any],
    organization_id: uuid.UUID,
    record_id: uuid.UUID,
    values: dict[str, Any],
) -> None:
    await conn.execute(
        update(table.model)
        .where(table.model.id == record_id, table.in_org(organization_id))
        .values(**values)
    )
