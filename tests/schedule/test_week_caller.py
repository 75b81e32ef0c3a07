"""get-schedule-data-batch re-reads its caller inside the page statement (`Reading.as_caller`), as
the session list does: a caller this process already knows costs no statement of its own, and any
change to who they are (therapist, deactivation; the organization's time zone:
`test_sessions_caller.py`) applies to the very next request, also to the reads started alongside
the page."""

from __future__ import annotations

import uuid

import httpx

from tests.fixtures import T1, T2, U_ADMIN, Clinic
from tests.fixtures import U_T1 as THERAPIST_USER
from tests.schedule.test_sessions_caller import _reads, _set, statements_on_reader
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import User

URL = "/get-schedule-data-batch"
WEEK = {"start_date": "2027-03-08", "end_date": "2027-03-10"}
FULL = {**WEEK, "include_availability": "true", "include_conflicts": "true"}


def _callers(statements: list[str]) -> list[str]:
    """The statements that read only the caller (`caller_row` on its own)."""
    return [s for s in _reads(statements) if s.lstrip().startswith("SELECT users.id")]


async def test_a_known_caller_is_read_by_the_page_statement_only(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    headers = clinic.headers("admin")
    query = {**FULL, "therapist_ids": f"{T1},{T2}"}
    with statements_on_reader(db) as statements:
        first = await client.get(URL, params=query, headers=headers)
        after_first = len(_reads(statements))
        callers_first = len(_callers(statements))
        again = [await client.get(URL, params=query, headers=headers) for _ in range(3)]
    assert first.status_code == 200, first.text
    assert [r.status_code for r in again] == [200, 200, 200]
    assert all(r.json()["data"]["sessions"] == first.json()["data"]["sessions"] for r in again)
    assert callers_first == 1  # the unknown caller, read once
    assert len(_callers(statements)) == 1
    # Each later request makes the first's statements but the caller's.
    assert len(_reads(statements)) == after_first + 3 * (after_first - 1)


async def test_a_therapist_moved_to_another_therapist_row_sees_its_week_at_once(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    headers = clinic.headers("therapist")
    mine, theirs = {**FULL, "therapist_ids": T1}, {**FULL, "therapist_ids": T2}
    assert (await client.get(URL, headers=headers, params=mine)).status_code == 200
    assert (await client.get(URL, headers=headers, params=theirs)).status_code == 404
    await _set(db, User, THERAPIST_USER, therapist_id=uuid.UUID(T2))
    r = await client.get(URL, headers=headers, params=theirs)
    assert r.status_code == 200, r.text
    assert {s["therapist_id"] for s in r.json()["data"]["sessions"]} == {T2}
    assert [a["therapist_id"] for a in r.json()["data"]["availability"]] == [T2] * 3
    assert (await client.get(URL, headers=headers, params=mine)).status_code == 404


async def test_a_deactivated_caller_is_refused_at_once(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    headers = clinic.headers("admin")
    query = {**FULL, "therapist_ids": T1}
    assert (await client.get(URL, headers=headers, params=query)).status_code == 200
    await _set(db, User, U_ADMIN, is_active=False)
    body = {**WEEK, "include_availability": True, "include_conflicts": True, "therapist_ids": [T1]}
    for r in (
        await client.get(URL, headers=headers, params=query),
        await client.post(URL, headers=headers, json=body),
    ):
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "UNAUTHORIZED"
