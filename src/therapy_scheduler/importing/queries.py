"""The import's writes: upserts by primary key (COPY for large PostgreSQL batches), and the
replacement of a record's children (availability, time off, caseload, authorized services)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from therapy_scheduler.importing.bulk_copy import COPY_THRESHOLD, copy_upsert

CHUNK = 1000
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
