"""get-sessions-optimized re-reads its caller inside the page statement (`Reading.as_caller`): a caller
this process already knows costs one statement, and any change to who they are (role, therapist,
organization time zone, deactivation) applies to the very next request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update

from tests.fixtures import ORG_A, T1, T2, Clinic, S
from tests.fixtures import U_T1 as THERAPIST_USER
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Organization, User

URL = "/get-sessions-optimized"


@contextmanager
def statements_on_reader(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.reader.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.reader.sync_engine, "before_cursor_execute", record)


def _reads(statements: list[str]) -> list[str]:
    """The statements that read data (SQLite's reads are wrapped in BEGIN/COMMIT)."""
    return [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


async def _set(db: Database, table: Any, row_id: str, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(update(table).where(table.id == uuid.UUID(row_id)).values(**values))


async def test_a_known_caller_costs_one_statement(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    headers = clinic.headers("therapist")
    with statements_on_reader(db) as statements:
        first = await client.get(URL, headers=headers)
        after_first = len(_reads(statements))
        again = [await client.get(URL, headers=headers) for _ in range(3)]
    assert first.status_code == 200
    assert [r.status_code for r in again] == [200, 200, 200]
    assert all(r.json()["data"] == first.json()["data"] for r in again)
    assert after_first == 2  # the caller, then the page
    assert len(_reads(statements)) == after_first + 3  # the page (with the caller) only


async def test_a_therapist_moved_to_another_therapist_row_sees_its_sessions_at_once(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    headers = clinic.headers("therapist")
    assert (await client.get(URL, headers=headers, params={"therapist_id": T1})).status_code == 200
    assert (await client.get(URL, headers=headers, params={"therapist_id": T2})).status_code == 404
    await _set(db, User, THERAPIST_USER, therapist_id=uuid.UUID(T2))
    r = await client.get(URL, headers=headers, params={"therapist_id": T2})
    assert r.status_code == 200
    theirs = {s["therapist_id"] for s in r.json()["data"]["sessions"]}
    assert theirs == {T2}
    assert (await client.get(URL, headers=headers, params={"therapist_id": T1})).status_code == 404


@pytest.mark.parametrize(
    ("url", "echo"),
    [(URL, "filters"), ("/get-schedule-data-batch", "request_parameters")],
    ids=["sessions", "week"],
)
async def test_an_organization_time_zone_change_applies_at_once(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, url: str, echo: str
) -> None:
    """S9 starts 2027-03-17 23:00 UTC: the 17th in New York, the 18th in Tokyo. The week re-reads
    its caller the same way (`test_week_caller.py`)."""
    headers = clinic.headers("admin")
    day = {"start_date": "2027-03-17", "end_date": "2027-03-17"}
    before = (await client.get(url, headers=headers, params=day)).json()
    assert S[9] in [s["id"] for s in before["data"]["sessions"]]
    assert before[echo]["time_zone"] == "America/New_York"

    await _set(db, Organization, ORG_A, time_zone="Asia/Tokyo")
    after = (await client.get(url, headers=headers, params=day)).json()
    assert after[echo]["time_zone"] == "Asia/Tokyo"
    assert S[9] not in [s["id"] for s in after["data"]["sessions"]]
