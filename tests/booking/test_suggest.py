"""POST /suggest-alternative-times (docs/BOOKING.md) over HTTP on SQLite and PostgreSQL.

T1 works Mon-Fri 09:00-17:00 New York; org A keeps a 15-minute buffer between places and blocks
bookings without authorization units. Expected slots are computed by hand from those rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.booking.conftest import (
    book,
    hold_body,
    hold_ok,
    monday,
    set_org_settings,
    time_off_day,
    utc,
)
from tests.fixtures import A1, C1, C2, C3, L1, L2, T1, T2, Clinic
from therapy_scheduler.infra.db import Database


async def suggest(
    client: httpx.AsyncClient, clinic: Clinic, who: str = "scheduler", **body: Any
) -> httpx.Response:
    payload = {
        "therapist_id": T1,
        "client_id": C1,
        "duration_minutes": 60,
        "time_zone": "America/New_York",
        **body,
    }
    return await client.post(
        "/suggest-alternative-times", json=payload, headers=clinic.headers(who)
    )


def starts(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["start_time"] for s in response.json()["slots"]]


def at(day: date, *hhmm: str) -> list[str]:
    return [utc(day, h) for h in hhmm]


async def test_next_free_hours_of_one_day(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    r = await suggest(client, booking, start_date=day.isoformat(), end_date=day.isoformat())
    assert starts(r) == at(day, "09:00", "10:00", "11:00", "12:00", "13:00")
    body = r.json()
    assert body["slots"][0] == {
        "start_time": utc(day, "09:00"),
        "end_time": utc(day, "10:00"),
        "local_start_time": f"{day.isoformat()}T09:00",
        "local_end_time": f"{day.isoformat()}T10:00",
        "supervises": None,
        "authorization_id": A1,
        "units": 4,
    }
    assert (body["service_code"], body["duration_minutes"], body["limit"]) == ("97153", 60, 5)
    assert body["window"]["end_time"] == utc(day + timedelta(days=1), "00:00")


async def test_both_calendars_and_holds_are_respected(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day, "10:00", "11:00", client=C2))  # T1 busy
    await book(client, booking, hold_body(day, "14:00", "15:00", therapist=T2))  # C1 busy
    await hold_ok(client, booking, hold_body(day, "12:00", "12:30", client=C2))  # T1 held
    r = await suggest(client, booking, start_date=day.isoformat(), limit=50)
    # 13:30 would run into C1's session with T2 at 14:00.
    assert starts(r)[:5] == at(day, "09:00", "11:00", "12:30", "15:00", "16:00")


async def test_limit_and_default_limit(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    r = await suggest(client, booking, start_date=day.isoformat(), limit=50)
    # 8 one-hour slots a day, Mon-Fri, over 14 days from Monday: 8 x 10 = 80 >= 50.
    assert len(starts(r)) == 50
    r = await suggest(client, booking, start_date=day.isoformat(), limit=1)
    assert starts(r) == at(day, "09:00")


async def test_time_off_is_skipped(client: httpx.AsyncClient, booking: Clinic) -> None:
    off = time_off_day()
    r = await suggest(
        client, booking, start_date=off.isoformat(), end_date=(off + timedelta(days=1)).isoformat()
    )
    assert starts(r) == at(off + timedelta(days=1), "09:00", "10:00", "11:00", "12:00", "13:00")


async def test_buffer_between_locations(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    await book(
        client, booking, hold_body(day, "11:00", "13:00", client=C2, session={"location_id": L1})
    )
    window = {"start_time": f"{day.isoformat()}T11:00", "end_time": f"{day.isoformat()}T17:00"}
    # At another location the first start is 13:15 (15 minutes to travel); at L1 it is 13:00.
    r = await suggest(client, booking, **window, location_id=L2, limit=2)
    assert starts(r) == at(day, "13:15", "14:15")
    r = await suggest(client, booking, **window, location_id=L1, limit=2)
    assert starts(r) == at(day, "13:00", "14:00")


async def test_authorization_units_are_respected(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    # A1 approves 8 units of 97155 (two hours): three hours never fit, two hours do.
    r = await suggest(
        client, booking, start_date=day.isoformat(), service_code="97155", duration_minutes=180
    )
    assert starts(r) == []
    r = await suggest(
        client, booking, start_date=day.isoformat(), service_code="97155", duration_minutes=120
    )
    assert starts(r)[:2] == at(day, "09:00", "11:00")
    assert r.json()["slots"][0]["units"] == 8
    # C3 has no authorization at all; under "warn" the slots are offered without one.
    r = await suggest(client, booking, client_id=C3, start_date=day.isoformat())
    assert starts(r) == []
    await set_org_settings(db, authorization_policy="warn")
    r = await suggest(client, booking, client_id=C3, start_date=day.isoformat(), limit=1)
    assert r.json()["slots"] == [
        {
            "start_time": utc(day, "09:00"),
            "end_time": utc(day, "10:00"),
            "local_start_time": f"{day.isoformat()}T09:00",
            "local_end_time": f"{day.isoformat()}T10:00",
            "supervises": None,
            "authorization_id": None,
            "units": 4,
        }
    ]


async def test_rescheduled_session_time_counts_as_free(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    day = monday(1)
    confirmed = await book(client, booking, hold_body(day, "09:00", "10:00"))
    sid = confirmed["session"]["id"]
    r = await suggest(client, booking, start_date=day.isoformat(), limit=1)
    assert starts(r) == at(day, "10:00")
    r = await suggest(client, booking, start_date=day.isoformat(), limit=1, session_id=sid)
    assert starts(r) == at(day, "09:00")


async def test_deterministic(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(2)
    body: dict[str, Any] = {"start_date": day.isoformat(), "limit": 20, "duration_minutes": 45}
    first = await suggest(client, booking, **body)
    second = await suggest(client, booking, **body)
    assert first.json() == second.json()


async def test_dst_spring_forward_keeps_local_quarter_hours(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    """2027-03-14 is the spring-forward Sunday in New York. Friday is EST (UTC-5), Monday EDT
    (UTC-4): the same local times, one UTC hour apart, all on local quarter hours."""
    r = await suggest(
        client,
        booking,
        start_time="2027-03-12T09:07",
        end_time="2027-03-16T00:00",
        duration_minutes=45,
        limit=50,
    )
    assert r.status_code == 200, r.text
    slots = r.json()["slots"]
    local = [s["local_start_time"] for s in slots]
    assert local[:3] == ["2027-03-12T09:15", "2027-03-12T10:00", "2027-03-12T10:45"]
    assert slots[0]["start_time"] == "2027-03-12T14:15:00Z"
    # Monday: the fixture's S7 occupies 09:00-10:00 EDT (13:00Z) at a clinic; 15 minutes to
    # travel (this request names no place), then 45-minute steps.
    monday_slots = [s for s in slots if s["local_start_time"].startswith("2027-03-15")]
    assert monday_slots[0] == {
        "start_time": "2027-03-15T14:15:00Z",
        "end_time": "2027-03-15T15:00:00Z",
        "local_start_time": "2027-03-15T10:15",
        "local_end_time": "2027-03-15T11:00",
        "supervises": None,
        "authorization_id": A1,
        "units": 3,
    }
    assert all(int(s[-2:]) % 15 == 0 for s in local)
    assert not any(s.startswith(("2027-03-13", "2027-03-14")) for s in local)  # weekend


async def test_dst_alignment_in_another_request_zone(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    """Quarter hours are those of the request's zone (Kathmandu is UTC+5:45)."""
    day = monday(1)
    r = await suggest(
        client, booking, start_date=day.isoformat(), time_zone="Asia/Kathmandu", limit=3
    )
    assert r.status_code == 200, r.text
    for s in r.json()["slots"]:
        assert int(s["local_start_time"][-2:]) % 15 == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"limit": 0}, "VALIDATION_ERROR"),
        ({"limit": 51}, "VALIDATION_ERROR"),
        ({"duration_minutes": 10}, "VALIDATION_ERROR"),
        ({"duration_minutes": 481}, "VALIDATION_ERROR"),
        ({"time_zone": "Mars/Olympus"}, "VALIDATION_ERROR"),
        ({"service_code": "99999"}, "VALIDATION_ERROR"),
        ({"start_date": "2027-01-01", "start_time": "2027-01-01T10:00"}, "VALIDATION_ERROR"),
        ({"start_date": "2027-01-10", "end_date": "2027-01-01"}, "VALIDATION_ERROR"),
        ({"start_time": "2027-01-10T10:00", "end_time": "2027-01-10T09:00"}, "VALIDATION_ERROR"),
        ({"start_time": "yesterday"}, "VALIDATION_ERROR"),
        ({"start_date": "2027-01-01", "end_date": "2028-06-01"}, "LIMIT_EXCEEDED"),
        ({"start_time": "2027-03-14T02:30"}, "NONEXISTENT_LOCAL_TIME"),
        ({"therapist_id": "nope"}, "VALIDATION_ERROR"),
        ({"surprise": 1}, "VALIDATION_ERROR"),
    ],
)
async def test_bad_input(
    client: httpx.AsyncClient, booking: Clinic, body: dict[str, Any], code: str
) -> None:
    r = await suggest(client, booking, **body)
    assert (r.status_code, r.json()["code"]) == (400, code), r.text


async def test_roles_and_tenants(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1).isoformat()
    r = await suggest(client, booking, "therapist", start_date=day, limit=1)
    assert starts(r) == at(monday(1), "09:00")
    assert "units" not in r.json()["slots"][0]  # therapists see no authorization data
    r = await suggest(client, booking, "therapist", therapist_id=T2, start_date=day)
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    # C2 is not on T1's caseload: invisible to T1.
    r = await suggest(client, booking, "therapist", client_id=C2, start_date=day)
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await suggest(client, booking, "admin_b", start_date=day)
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await client.post("/suggest-alternative-times", json={})
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED")


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2])[:40])

    engine = db.reader.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_constant_number_of_queries(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """Same number of queries for one day and for a quarter, however many slots are examined."""
    day = monday(1)
    for weeks in range(3):
        await book(client, booking, hold_body(monday(weeks), "10:00", "11:00", client=C2))
    counts = []
    for last in (day, day + timedelta(days=90)):
        with counting(db) as statements:
            r = await suggest(
                client,
                booking,
                start_date=day.isoformat(),
                end_date=last.isoformat(),
                duration_minutes=480,
                limit=50,
            )
        assert r.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]
