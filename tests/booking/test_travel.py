"""Travel time between places at hold time, in alternatives and in suggestions (docs/BOOKING.md "Travel
time"), over HTTP on SQLite and PostgreSQL.

Places (org A, New York): LX a clinic downtown (40.7128, -74.0060), LY a school in midtown
(40.7580, -73.9855), LZ a home in Brooklyn (40.6782, -73.9442). Great-circle distances, by hand
(haversine, R = 6371.0088 km): LX-LY 5.31 km, LX-LZ 6.48 km, LY-LZ 9.53 km. At 30 km/h that is
10.6, 13.0 and 19.1 minutes of driving, rounded up to 15, 15 and 20, plus the 5-minute margin:
**20, 20 and 25 minutes**. Org A's flat buffer is 15 minutes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from tests.booking.conftest import (
    book,
    hold,
    hold_body,
    hold_ok,
    monday,
    named,
    set_org_settings,
    utc,
)
from tests.fixtures import C2, L2, ORG_A, T1, Clinic
from tests.support import import_more, uid
from therapy_scheduler.infra.db import Database

LX, LY, LZ, LN = uid(0xA1A1), uid(0xA1A2), uid(0xA1A3), uid(0xA1A4)


def _location(lid: str, name: str, kind: str, lat: float | None, lon: float | None) -> Any:
    place: dict[str, Any] = {
        "id": lid,
        "organization_id": ORG_A,
        "name": name,
        "location_type": kind,
    }
    if lat is not None:
        place |= {"latitude": lat, "longitude": lon}
    return place


async def add_places(db: Database) -> None:
    await import_more(
        db,
        {
            "locations": [
                _location(LX, "Downtown clinic", "clinic", 40.7128, -74.0060),
                _location(LY, "Midtown school", "school", 40.7580, -73.9855),
                _location(LZ, "Brooklyn home", "home", 40.6782, -73.9442),
                _location(LN, "Queens home (no coordinates)", "home", None, None),
            ]
        },
    )


def slot(day: date, start: str, end: str) -> dict[str, str]:
    return {"start_time": utc(day, start), "end_time": utc(day, end)}


def at(place: str) -> dict[str, Any]:
    return {"session": {"location_id": place}}


async def test_travel_from_coordinates_blocks_with_alternatives(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    day = monday(1)
    await book(client, booking, hold_body(day, "13:00", "14:00", **at(LX)))
    # 15 minutes satisfy the flat buffer but not the 20-minute trip to the school.
    r = await hold(client, booking, hold_body(day, "14:15", "15:00", client=C2, **at(LY)))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "INSUFFICIENT_TRAVEL_TIME"
    assert body["error"] == (
        f"The occurrence on {named(day, '14:15')} leaves 15 minutes to travel from the "
        "therapist's session at another location; the trip takes 20"
    )
    assert body["details"] == {
        "occurrence_index": 0,
        "travel_minutes": 20,
        "gap_minutes": 15,
        "conflict": slot(day, "13:00", "14:00"),
        "requested": slot(day, "14:15", "15:00"),
        # 45 minutes at the school, closest to 14:15 first: after the clinic session it may start
        # at 14:20, on the quarter-hour grid 14:30; then the next ones that do not overlap.
        "alternatives": [
            slot(day, "14:30", "15:15"),
            slot(day, "15:15", "16:00"),
            slot(day, "16:00", "16:45"),
        ],
    }
    # Before the session: the trip to the clinic must fit between them too.
    r = await hold(client, booking, hold_body(day, "12:00", "12:45", client=C2, **at(LY)))
    assert r.json()["code"] == "INSUFFICIENT_TRAVEL_TIME"
    assert "to travel to the therapist's session" in r.json()["error"]
    held = await hold_ok(client, booking, hold_body(day, "14:20", "15:00", client=C2, **at(LY)))
    assert held["warnings"] == []


async def test_matrix_overrides_coordinates_and_reaches_far(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    r = await client.put(
        "/admin/travel-times",
        json={"entries": [{"from_location_id": LY, "to_location_id": LX, "minutes": 240}]},
        headers=booking.headers("admin"),
    )
    assert r.status_code == 200, r.text
    day = monday(1)
    await book(client, booking, hold_body(day, "09:00", "10:00", **at(LX)))
    # 3.5 hours later is still too soon: the busy time read around a hold covers the longest trip
    # (240 minutes), not only the 15-minute buffer.
    r = await hold(client, booking, hold_body(day, "13:30", "14:30", client=C2, **at(LY)))
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["details"]["travel_minutes"]) == (
        "INSUFFICIENT_TRAVEL_TIME",
        240,
    )
    assert r.json()["details"]["alternatives"][0] == slot(day, "14:00", "15:00")
    await hold_ok(client, booking, hold_body(day, "14:00", "15:00", client=C2, **at(LY)))


async def test_type_defaults_without_coordinates_and_telehealth(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    await set_org_settings(
        db, travel_defaults=[{"location_types": ["clinic", "home"], "minutes": 35}]
    )
    day = monday(1)
    await book(client, booking, hold_body(day, "13:00", "14:00", **at(LX)))
    # LN has no coordinates: the clinic/home default applies (either order).
    r = await hold(client, booking, hold_body(day, "14:30", "15:00", client=C2, **at(LN)))
    assert (r.json()["code"], r.json()["details"]["travel_minutes"]) == (
        "INSUFFICIENT_TRAVEL_TIME",
        35,
    )
    # A session with a location type but no location: the default of the types applies.
    r = await hold(
        client,
        booking,
        hold_body(day, "14:30", "15:00", client=C2, session={"location_type": "home"}),
    )
    assert (r.json()["code"], r.json()["details"]["travel_minutes"]) == (
        "INSUFFICIENT_TRAVEL_TIME",
        35,
    )
    # LZ has coordinates: they win over the type default (20 minutes from LX).
    await hold_ok(client, booking, hold_body(day, "14:20", "15:00", client=C2, **at(LZ)))
    # Telehealth needs no travel: the flat 15-minute buffer alone applies.
    r = await hold(client, booking, hold_body(day, "12:00", "12:50", client=C2, **at(L2)))
    assert r.json()["code"] == "INSUFFICIENT_BREAK"
    await hold_ok(client, booking, hold_body(day, "11:45", "12:45", client=C2, **at(L2)))


async def test_buffer_stays_the_minimum_and_keeps_its_code(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    await set_org_settings(db, buffer_minutes=30)
    day = monday(1)
    await book(client, booking, hold_body(day, "13:00", "14:00", **at(LX)))
    # The trip takes 20 minutes, the flat break 30: the break binds, with its own code.
    r = await hold(client, booking, hold_body(day, "14:20", "15:00", client=C2, **at(LY)))
    assert (r.json()["code"], r.json()["details"]["buffer_minutes"]) == ("INSUFFICIENT_BREAK", 30)
    await hold_ok(client, booking, hold_body(day, "14:30", "15:00", client=C2, **at(LY)))


async def test_travel_policy_warn_and_off(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    day = monday(1)
    await book(client, booking, hold_body(day, "13:00", "14:00", **at(LX)))
    await set_org_settings(db, travel_policy="warn")
    held = await hold_ok(client, booking, hold_body(day, "14:15", "15:00", client=C2, **at(LY)))
    assert held["warnings"] == [
        {
            "code": "INSUFFICIENT_TRAVEL_TIME",
            "message": f"The occurrence on {named(day, '14:15')} leaves 15 minutes to travel "
            "from the therapist's session at another location; the trip takes 20",
            "occurrence_index": 0,
        }
    ]
    await set_org_settings(db, travel_policy="off")
    tuesday = day + timedelta(days=1)
    await book(client, booking, hold_body(tuesday, "13:00", "14:00", **at(LX)))
    held = await hold_ok(client, booking, hold_body(tuesday, "14:15", "15:00", client=C2, **at(LY)))
    assert held["warnings"] == []


async def test_gap_across_spring_forward_is_real_time(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """Sunday 14 March 2027, New York: 02:00 EST becomes 03:00 EDT. A session ending at 01:30 EST
    (06:30Z) and one starting at 03:00 EDT (07:00Z) are 90 minutes apart on the wall clock but 30
    minutes apart in real time; the trip (45 minutes, set by an admin) does not fit."""
    await add_places(db)
    await set_org_settings(db, availability_policy="off", authorization_policy="off")
    r = await client.put(
        "/admin/travel-times",
        json={"entries": [{"from_location_id": LX, "to_location_id": LZ, "minutes": 45}]},
        headers=booking.headers("admin"),
    )
    assert r.status_code == 200, r.text
    day = date(2027, 3, 14)
    await book(client, booking, hold_body(day, "00:30", "01:30", **at(LX)))
    r = await hold(client, booking, hold_body(day, "03:00", "04:00", client=C2, **at(LZ)))
    assert r.status_code == 409, r.text
    assert r.json()["details"]["requested"] == {
        "start_time": "2027-03-14T07:00:00Z",
        "end_time": "2027-03-14T08:00:00Z",
    }
    assert (r.json()["details"]["gap_minutes"], r.json()["details"]["travel_minutes"]) == (30, 45)
    await hold_ok(client, booking, hold_body(day, "03:15", "04:15", client=C2, **at(LZ)))


async def test_suggestions_leave_travel_time_free(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    day = monday(1)
    await book(client, booking, hold_body(day, "10:00", "11:00", **at(LX)))
    payload = {
        "therapist_id": T1,
        "client_id": C2,
        "duration_minutes": 60,
        "time_zone": "America/New_York",
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
        "location_id": LZ,
    }
    r = await client.post(
        "/suggest-alternative-times", json=payload, headers=booking.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    # 20 minutes to or from LX: a slot before 10:00 ends by 09:40 (none fits after 09:00); after
    # 11:00 the first quarter hour at least 20 minutes later is 11:30.
    assert [s["start_time"] for s in r.json()["slots"]] == [
        utc(day, h) for h in ("11:30", "12:30", "13:30", "14:30", "15:30")
    ]
    # At the same clinic no travel is needed: back to back is offered.
    r = await client.post(
        "/suggest-alternative-times",
        json={**payload, "location_id": LX},
        headers=booking.headers("scheduler"),
    )
    assert [s["start_time"] for s in r.json()["slots"]][:2] == [
        utc(day, "09:00"),
        utc(day, "11:00"),
    ]


async def test_the_forecast_says_travel_and_breaks_in_words(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await add_places(db)
    await set_org_settings(db, buffer_minutes=30)
    first = monday(1)
    for week in (0, 1):
        await book(
            client, booking, hold_body(first + timedelta(weeks=week), "13:00", "14:00", **at(LX))
        )
    # Week 1: 14:20 at LY, 20 minutes' drive but 30 minutes' break → the break; week 2 the same.
    series = hold_body(
        first, "14:20", "15:00", client=C2, recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"}, **at(LY)
    )
    r = await client.post(
        "/sessions/hold", json={**series, "dry_run": True}, headers=booking.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == [
        "Occurrences 1\N{EN DASH}2 leave less than the 30 minutes' break between the therapist's "
        "sessions at different places"
    ]
    # Brooklyn is 25 minutes from the school: with a 15-minute break, the trip binds.
    await set_org_settings(db, buffer_minutes=15)
    await book(client, booking, hold_body(first + timedelta(weeks=2), "13:00", "14:00", **at(LY)))
    series = hold_body(
        first, "14:15", "15:00", client=C2, recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"}, **at(LZ)
    )
    r = await client.post(
        "/sessions/hold", json={**series, "dry_run": True}, headers=booking.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == [
        "Occurrences 1\N{EN DASH}3 leave too little time to travel to or from the therapist's "
        "sessions at other places"
    ]
