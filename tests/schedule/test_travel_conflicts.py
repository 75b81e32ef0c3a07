"""`include_conflicts` of get-schedule-data-batch reports consecutive sessions too close for the trip
between their places (`insufficient_travel_time`, docs/API.md), on SQLite and PostgreSQL.

Places as in tests/booking/test_travel.py: LX-LY 20 minutes by coordinates, LY-LZ 25, org A's buffer 15.
Sunday 14 March 2027 in New York springs forward at 02:00 EST (07:00Z) to 03:00 EDT.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.booking.conftest import set_org_settings
from tests.booking.test_travel import LX, LY, LZ, add_places
from tests.fixtures import C1, C3, L2, T1, Clinic
from tests.support import import_more, session, uid
from therapy_scheduler.infra.db import Database

URL = "/get-schedule-data-batch"
DAY = "2027-03-14"
E = {n: uid(0xE700 + n) for n in range(1, 8)}


def _at(start: str, end: str) -> tuple[str, str]:
    return f"{DAY}T{start}:00Z", f"{DAY}T{end}:00Z"


async def _seed(db: Database) -> None:
    await add_places(db)
    rows = [
        # 00:30-01:30 EST at the clinic, then 03:00 EDT at the school: 90 minutes on the wall clock,
        # 30 in real time; the admin's 45 minutes for this pair do not fit.
        (E[1], C1, ("05:30", "06:30"), {"location_id": LX, "location_type": "clinic"}),
        (E[2], C3, ("07:00", "07:45"), {"location_id": LY, "location_type": "school"}),
        # same school: no travel
        (E[3], C1, ("07:45", "08:15"), {"location_id": LY, "location_type": "school"}),
        # school to the Brooklyn home: 25 minutes by coordinates, 25 given: fine
        (E[4], C3, ("08:40", "09:00"), {"location_id": LZ, "location_type": "home"}),
        # home to telehealth: no travel, but the flat 15-minute break applies
        (E[5], C1, ("09:05", "09:30"), {"location_id": L2, "location_type": "telehealth"}),
        # telehealth to the clinic: no travel, 15 minutes of break given
        (E[6], C3, ("09:45", "10:15"), {"location_id": LX, "location_type": "clinic"}),
        # clinic to the school, 20 minutes by coordinates, 15 given: the trip binds
        (E[7], C1, ("10:30", "11:00"), {"location_id": LY, "location_type": "school"}),
    ]
    await import_more(
        db,
        {
            "sessions": [
                session(sid, T1, client, *_at(*times), service_code="97153", **place)
                for sid, client, times, place in rows
            ]
        },
    )


async def _place_conflicts(client: httpx.AsyncClient, clinic: Clinic) -> list[dict[str, Any]]:
    r = await client.get(
        URL,
        params={"start_date": DAY, "end_date": DAY, "include_conflicts": "1"},
        headers=clinic.headers("therapist"),
    )
    assert r.status_code == 200, r.text
    return [
        {k: c[k] for k in ("type", "session_ids", "therapist_id", "description")}
        for c in r.json()["data"]["conflicts"]
        if c["type"] in ("insufficient_break", "insufficient_travel_time")
    ]


async def test_travel_conflicts_across_spring_forward(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await _seed(db)
    r = await client.put(
        "/admin/travel-times",
        json={"entries": [{"from_location_id": LX, "to_location_id": LY, "minutes": 45}]},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 200, r.text
    r = await client.get(
        URL,
        params={"start_date": DAY, "end_date": DAY, "include_conflicts": "1"},
        headers=clinic.headers("therapist"),
    )
    travel = [c for c in r.json()["data"]["conflicts"] if c["type"] == "insufficient_travel_time"]
    assert [(c["travel_minutes"], c["gap_minutes"]) for c in travel] == [(45, 30), (45, 15)]
    conflicts = await _place_conflicts(client, clinic)
    assert conflicts == [
        {
            "type": "insufficient_break",
            "session_ids": [E[4], E[5]],
            "therapist_id": T1,
            "description": "Only 5 minutes between sessions at different locations; the "
            "organization requires 15",
        },
        {
            "type": "insufficient_travel_time",
            "session_ids": [E[1], E[2]],
            "therapist_id": T1,
            "description": "Only 30 minutes between sessions at different locations; the trip "
            "takes 45",
        },
        {
            "type": "insufficient_travel_time",
            "session_ids": [E[6], E[7]],
            "therapist_id": T1,
            "description": "Only 15 minutes between sessions at different locations; the trip "
            "takes 45",
        },
    ]


async def test_travel_conflicts_by_coordinates_and_policy_off(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await _seed(db)
    conflicts = await _place_conflicts(client, clinic)
    # Without the matrix entry LX-LY takes 20 minutes: the 30-minute gap is enough, 15 is not.
    assert [(c["type"], c["session_ids"]) for c in conflicts] == [
        ("insufficient_break", [E[4], E[5]]),
        ("insufficient_travel_time", [E[6], E[7]]),
    ]
    await set_org_settings(db, travel_policy="off")
    conflicts = await _place_conflicts(client, clinic)
    assert [(c["type"], c["session_ids"]) for c in conflicts] == [
        ("insufficient_break", [E[4], E[5]])
    ]
