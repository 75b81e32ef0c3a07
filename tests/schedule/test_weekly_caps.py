"""`weekly_cap_exceeded` conflicts of get-schedule-data-batch (docs/API.md): the organization's week
(Monday in New York), whatever the UTC dates, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures import A1, C1, T1, Clinic, S
from tests.support import import_more, session, uid
from therapy_scheduler.infra.db import Database

URL = "/get-schedule-data-batch"
SUNDAY_NIGHT = uid(0xA6C1)


async def _cap_a1(db: Database, **cap: Any) -> None:
    await import_more(
        db,
        {
            "authorizations": [
                {
                    "id": A1,
                    "client_id": C1,
                    "number": "A-1",
                    "payer": "Blue Harbor",
                    "start_date": "2027-01-01",
                    "end_date": "2027-06-30",
                    "status": "approved",
                    "services": [
                        {"service_code": "97153", "approved_units": 40, **cap},
                        {"service_code": "97155", "approved_units": 8},
                    ],
                }
            ],
            # Sunday 14 March 22:30 in New York is Monday 02:30 UTC: still the week of 8 March.
            "sessions": [
                session(
                    SUNDAY_NIGHT,
                    T1,
                    C1,
                    "2027-03-15T02:30:00Z",
                    "2027-03-15T03:30:00Z",
                    authorization_id=A1,
                )
            ],
        },
    )


def _caps(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [c for c in response.json()["data"]["conflicts"] if c["type"] == "weekly_cap_exceeded"]


async def test_weekly_cap_conflicts_in_the_organizations_week(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    # A1's 97153 in the week of 8 March: S1 (8 units), S5 (4), the Sunday-night session (4);
    # in the week of 15 March: S7 (4) and S9 (4).
    await _cap_a1(db, weekly_cap_units=10)
    params = {"start_date": "2027-03-08", "end_date": "2027-03-20", "include_conflicts": "1"}
    r = await client.get(URL, params=params, headers=clinic.headers("scheduler"))
    assert _caps(r) == [
        {
            "type": "weekly_cap_exceeded",
            "session_ids": [S[5], SUNDAY_NIGHT],
            "client_id": C1,
            "authorization_id": A1,
            "service_code": "97153",
            "week": "2027-03-08",
            "description": "These sessions take service 97153 beyond its weekly cap of 10 units "
            "in the week of Monday 2027-03-08",
            "suggested_resolution": "Move a session to another week, or ask the payer for a "
            "higher weekly cap",
        }
    ]
    # A range holding only the second week: its sessions are within the cap.
    second = {"start_date": "2027-03-15", "end_date": "2027-03-20", "include_conflicts": "1"}
    r = await client.get(URL, params=second, headers=clinic.headers("scheduler"))
    assert _caps(r) == []
    # A range holding only the Sunday: the whole week is counted, S1 and S5 included.
    sunday = {"start_date": "2027-03-14", "end_date": "2027-03-14", "include_conflicts": "1"}
    r = await client.get(URL, params=sunday, headers=clinic.headers("scheduler"))
    assert [c["session_ids"] for c in _caps(r)] == [[SUNDAY_NIGHT]]
    # A therapist gets no authorization conflicts.
    r = await client.get(URL, params=params, headers=clinic.headers("therapist"))
    assert _caps(r) == []


async def test_weekly_cap_in_hours(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    await _cap_a1(db, weekly_cap_hours=3.5)  # S1 (2 h) + S5 (1 h) fit; the Sunday hour does not
    params = {"start_date": "2027-03-08", "end_date": "2027-03-14", "include_conflicts": "1"}
    r = await client.get(URL, params=params, headers=clinic.headers("admin"))
    caps = _caps(r)
    assert [c["session_ids"] for c in caps] == [[SUNDAY_NIGHT]]
    assert "weekly cap of 3.5 hours" in caps[0]["description"]
