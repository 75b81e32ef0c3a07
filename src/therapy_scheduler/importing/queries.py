"""The import's SQL: what the checks read (existing records, e-mails, sessions, unit lengths), the
upserts by primary key (COPY for large PostgreSQL batches) and the replacement of a record's
children (availability, time off, caseload, authorized services)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from therapy_scheduler.importing.bulk_copy import COPY_THRESHOLD, copy_upsert
from therapy_scheduler.models import AuthorizationService, Session, User
from therapy_scheduler.models.session import MAX_SESSION_LENGTH

CHUNK = 1000
# A row of any width (the checks read rows of several shapes).
AnyRow = Row[*tuple[Any, ...]]
Progress = Callable[[str, int, int], None]


async def upsert_rows(
    conn: AsyncConnection, model: Any, rows: list[dict[str, Any]], progress: Progress, kind: str
) -> None:
    """Insert `rows` into `model`'s table, or update the rows with the same primary key."""
    if not rows:
        return
    table: Table = model.__table__
    keys = [c.name for c in table.primary_key.columns]
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        await copy_upsert(conn, table, keys, rows, progress, kind)
        return
    upsert_into = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        statement = upsert_into(table)
        updates = {
            name: statement.excluded[name]
            for name in chunk[0]
            if name not in keys and name != "created_at"
        }
        await conn.execute(
            statement.on_conflict_do_update(index_elements=keys, set_=updates), chunk
        )
        progress(kind, min(start + CHUNK, len(rows)), len(rows))


async def delete_children(
    conn: AsyncConnection, column: InstrumentedAttribute[uuid.UUID], parent_id: uuid.UUID
) -> None:
    """Delete the rows whose `column` (a foreign key) is `parent_id`, before writing their new set."""
    await conn.execute(delete(column.class_).where(column == parent_id))


async def insert_rows(conn: AsyncConnection, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` into `model`'s table, CHUNK rows per statement."""
    for offset in range(0, len(rows), CHUNK):
        await conn.execute(insert(model), rows[offset : offset + CHUNK])


# --- what the checks read, in chunks of LOOKUP ids -------------------------------------------------

LOOKUP = 500


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), LOOKUP):
        yield items[i : i + LOOKUP]


async def existing_rows(
    conn: AsyncConnection,
    model: Any,
    ids: Iterable[uuid.UUID],
    columns: tuple[Any, ...],
    *,
    organization_id: uuid.UUID | None,
) -> dict[uuid.UUID, AnyRow]:
    """The rows of `model` among `ids` (id first, then `columns`), limited to an organization if given."""
    found: dict[uuid.UUID, AnyRow] = {}
    for chunk in _chunks(list(set(ids))):
        query = select(model.id, *columns).where(model.id.in_(chunk))
        if organization_id is not None:
            query = query.where(model.organization_id == organization_id)
        for r in await conn.execute(query):
            found[r[0]] = r
    return found


async def users_by_email(conn: AsyncConnection, emails: list[str]) -> list[tuple[uuid.UUID, str]]:
    """(id, e-mail) of the users that already have one of `emails`."""
    out: list[tuple[uuid.UUID, str]] = []
    for chunk in _chunks(emails):
        result = await conn.execute(select(User.id, User.email).where(User.email.in_(chunk)))
        out += [(row.id, row.email) for row in result]
    return out


async def sessions_of(
    conn: AsyncConnection, column: Any, people: list[uuid.UUID], lo: datetime, hi: datetime
) -> list[AnyRow]:
    """Live sessions (id, person, start, end) of `people` (`column`: therapist_id or client_id) that
    overlap [lo, hi)."""
    out: list[AnyRow] = []
    for chunk in _chunks(people):
        result = await conn.execute(
            select(Session.id, column, Session.start_time, Session.end_time).where(
                column.in_(chunk),
                Session.status != "cancelled",
                Session.start_time < hi,
                Session.end_time > lo,
                Session.start_time > lo - MAX_SESSION_LENGTH,
            )
        )
        out += list(result)
    return out


async def unit_minutes_of(
    conn: AsyncConnection, authorization_ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID | None, str], int]:
    """Minutes per unit, by (authorization, service code), of the given authorizations."""
    out: dict[tuple[uuid.UUID | None, str], int] = {}
    for chunk in _chunks(authorization_ids):
        for r in await conn.execute(
            select(
                AuthorizationService.authorization_id,
                AuthorizationService.service_code,
                AuthorizationService.unit_minutes,
            ).where(AuthorizationService.authorization_id.in_(chunk))
        ):
            out[(r.authorization_id, r.service_code)] = r.unit_minutes
    return out
