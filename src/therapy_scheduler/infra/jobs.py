"""Periodic jobs that several API processes run (the hold purge, the webhook dispatcher): one process
at a time does each pass."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def try_lock_job(conn: AsyncConnection, name: str) -> bool:
    """A non-blocking transaction lock for a periodic job, so that one process runs it at a time.

    PostgreSQL: `pg_try_advisory_xact_lock` on a stable hash of the job's name, released by COMMIT or
    ROLLBACK. SQLite: the write transaction's BEGIN IMMEDIATE already runs alone.
    """
    if conn.dialect.name != "postgresql":
        return True
    digest = hashlib.sha256(f"therapy-scheduler:job:{name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    got = (
        await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    ).scalar_one()
    return bool(got)
