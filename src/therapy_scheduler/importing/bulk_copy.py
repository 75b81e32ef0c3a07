"""PostgreSQL bulk upsert through COPY, used by the importer for large batches.

COPY into a temporary table, then one `INSERT … ON CONFLICT` per chunk: the same upsert as the importer's
multi-row INSERTs, several times faster, in the caller's transaction. Constraints (foreign keys, the
exclusion constraints against double booking) are checked exactly as for a plain INSERT.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.ext.asyncio import AsyncConnection

COPY_THRESHOLD = 5000
COPY_CHUNK = 20_000


async def copy_upsert(
    conn: AsyncConnection,
    table: Table,
    keys: list[str],
    rows: list[dict[str, Any]],
    progress: Callable[[str, int, int], None],
    kind: str,
) -> None:
    columns = list(rows[0])
    staging = f"import_{table.name}_{uuid.uuid4().hex[:8]}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(
        f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys and c != "created_at"
    )
    # Runs through SQLAlchemy first, so the driver's transaction is open before COPY uses it.
    await conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    types = {c.name: c.type for c in table.columns}
    for start in range(0, len(rows), COPY_CHUNK):
        chunk = rows[start : start + COPY_CHUNK]
        await driver.copy_records_to_table(
            staging,
            columns=columns,
            records=[tuple(_copy_value(types[c], r[c]) for c in columns) for r in chunk],
        )
        # Identifiers come from the table definition and our own record models, never from input.
        await conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{staging}" '  # noqa: S608
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        await conn.exec_driver_sql(f'TRUNCATE "{staging}"')
        progress(kind, min(start + COPY_CHUNK, len(rows)), len(rows))


def _copy_value(column_type: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)
    if isinstance(column_type, JSON) and value is not None:
        return orjson.dumps(value).decode()
    return value
