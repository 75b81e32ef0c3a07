"""A SQLite file database is read through a memory map by every connection of the service, the
readers' and the writer's (docs/DECISIONS.md, "The hot read path")."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from therapy_scheduler.infra.db import SQLITE_MMAP_BYTES, Database


async def test_every_sqlite_connection_maps_the_database_file(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("a SQLite setting")
    async with db.read() as conn:
        read = (await conn.execute(text("PRAGMA mmap_size"))).scalar_one()
    async with db.write() as conn:
        written = (await conn.execute(text("PRAGMA mmap_size"))).scalar_one()
    assert read == written == SQLITE_MMAP_BYTES
