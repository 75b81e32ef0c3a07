"""The reader pool runs in autocommit: a read request asks the driver for no COMMIT and no ROLLBACK
(each would be a hand-off to aiosqlite's thread on SQLite), while the writer still rolls back a
failed transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from tests.fixtures import ORG_A, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Organization


@asynccontextmanager
async def driver_calls(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[tuple[str, str]]]:
    """(pool, method) of every commit() and rollback() the driver connections receive: the real
    methods still run, the calls are only recorded."""
    pools: dict[int, str] = {}
    calls: list[tuple[str, str]] = []

    def checked_out(pool: str) -> Any:
        def record(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            pools[id(dbapi_connection)] = pool

        return record

    listeners = [
        (db.reader.sync_engine, checked_out("reader")),
        (db.writer.sync_engine, checked_out("writer")),
    ]
    for engine, listener in listeners:
        event.listen(engine, "checkout", listener)
    async with db.reader.connect() as conn:
        adapter = type((await conn.get_raw_connection()).dbapi_connection)
    for method in ("commit", "rollback"):
        real = getattr(adapter, method)

        def spy(self: Any, *args: Any, _real: Any = real, _method: str = method) -> Any:
            calls.append((pools.get(id(self), "other"), _method))
            return _real(self, *args)

        monkeypatch.setattr(adapter, method, spy)
    try:
        yield calls
    finally:
        for engine, listener in listeners:
            event.remove(engine, "checkout", listener)


async def test_a_read_request_asks_the_driver_for_no_commit_or_rollback(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = clinic.headers("admin")
    async with driver_calls(db, monkeypatch) as calls:
        pages = [await client.get("/get-sessions-optimized", headers=headers) for _ in range(3)]
        week = await client.get(
            "/get-schedule-data-batch",
            headers=headers,
            params={"start_date": "2027-03-15", "end_date": "2027-03-21"},
        )
    assert [r.status_code for r in pages] == [200, 200, 200]
    assert pages[0].json()["data"]["sessions"]
    assert week.status_code == 200
    assert [c for c in calls if c[0] == "reader"] == []


async def test_the_writer_still_rolls_back_a_failed_transaction(
    db: Database, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = uuid.UUID(ORG_A)

    async def failing_write() -> None:
        async with db.write() as conn:
            await conn.execute(
                update(Organization).where(Organization.id == org).values(name="Renamed")
            )
            raise RuntimeError("the request failed after its write")

    async with driver_calls(db, monkeypatch) as calls:
        with pytest.raises(RuntimeError):
            await failing_write()
    assert ("writer", "rollback") in calls
    async with db.read() as conn:
        renamed = await conn.scalar(
            select(func.count()).where(Organization.id == org, Organization.name == "Renamed")
        )
    assert renamed == 0
