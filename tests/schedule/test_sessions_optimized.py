"""GET /get-sessions-optimized through HTTP (docs/API.md): order, filters, summary over every
matching row, page and cursor pagination (stable under concurrent inserts), scoping, invalid input."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.fixtures import A1, C1, C2, C3, CB, L2, ORG_A, T1, T2, TB, Clinic, S
from tests.support import (
    assert_error,
    client_record,
    import_more,
    session,
    session_ids,
    therapist,
    uid,
    without_request_id,
)
from therapy_scheduler.infra.db import Database

URL = "/get-sessions-optimized"
# Every org-A session, newest first; S1 and S3 share their start, so the larger id comes first.
ALL_DESC = [S[9], S[8], S[7], S[5], S[6], S[4], S[2], S[3], S[1]]
STARTS = {
    S[1]: "2027-03-08T14:00:00Z",
    S[2]: "2027-03-08T16:05:00Z",
    S[3]: "2027-03-08T14:00:00Z",
    S[5]: "2027-03-10T15:00:00Z",
    S[6]: "2027-03-10T14:00:00Z",
    S[7]: "2027-03-15T13:00:00Z",
    S[9]: "2027-03-17T23:00:00Z",
}


def _upcoming(ids: list[str]) -> int:
    """Scheduled sessions that start after now (the fixture's are in 2027)."""
    now = datetime.now().astimezone()
    return sum(
        1
        for sid in ids
        if sid in STARTS and datetime.fromisoformat(STARTS[sid].replace("Z", "+00:00")) > now
    )


async def test_default_page_shape_summary_and_echo(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(URL, headers=clinic.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"success", "data", "filters", "performance"}
    assert set(body["data"]) == {"sessions", "pagination", "summary"}
    assert set(body["performance"]) == {"query_time_ms"}
    assert session_ids(r) == ALL_DESC
    first = body["data"]["sessions"][-1]
    created = first.pop("created_at")
    updated = first.pop("updated_at")
    assert created.endswith("Z")
    assert updated.endswith("Z")
    assert first == {
        "id": S[1],
        "therapist_id": T1,
        "client_id": C1,
        "start_time": "2027-03-08T14:00:00Z",
        "end_time": "2027-03-08T16:00:00Z",
        "duration_minutes": 120,
        "status": "scheduled",
        "location_type": "clinic",
        "location_id": uid(0xA101),
        "service_code": "97153",
        "series_id": None,
        "therapist": {"id": T1, "full_name": "Tara Quinn"},
        "client": {"id": C1, "full_name": "Casey Cole"},
        "authorization": {
            "id": A1,
            "end_date": "2027-06-30",
            "sessions_remaining": 2,
            "units_remaining": 20,
        },
        "notes": "Worked on manding",
    }
    assert body["data"]["pagination"] == {
        "page": 1,
        "limit": 50,
        "total": 9,
        "total_pages": 1,
        "has_next_page": False,
        "has_previous_page": False,
        "next_cursor": None,
    }
    scheduled = [S[1], S[2], S[5], S[6], S[7], S[9]]
    assert body["data"]["summary"] == {
        "total_sessions": 9,
        "scheduled": 6,
        "in_progress": 0,
        "completed": 1,
        "cancelled": 1,
        "no_show": 1,
        "upcoming": _upcoming(scheduled),
        # Every non-cancelled row: S1 is 120 minutes, the seven others 60.
        "scheduled_minutes": 540,
    }
    assert body["filters"] == {
        "page": 1,
        "limit": 50,
        "therapist_id": None,
        "client_id": None,
        "status": [],
        "start_date": None,
        "end_date": None,
        "location_type": None,
        "cursor": None,
        "time_zone": "America/New_York",
    }


async def test_summary_counts_every_matching_row_not_the_page(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    # A past scheduled session is not upcoming; an in-progress one is counted as such.
    await import_more(
        db,
        {
            "sessions": [
                session(uid(0xF1), T2, C2, "2020-01-06T15:00:00Z", "2020-01-06T15:45:00Z"),
                session(
                    uid(0xF2), T2, C2, "2020-01-07T15:00:00Z", "2020-01-07T15:30:00Z", "in_progress"
                ),
            ]
        },
    )
    r = await client.get(
        URL, params={"limit": 1, "therapist_id": T2}, headers=clinic.headers("admin")
    )
    assert session_ids(r) == [S[8]]
    assert r.json()["data"]["summary"] == {
        "total_sessions": 6,
        "scheduled": 2,
        "in_progress": 1,
        "completed": 1,
        "cancelled": 1,
        "no_show": 1,
        "upcoming": _upcoming([S[6]]),
        "scheduled_minutes": 45 + 30 + 60 + 60 + 60,  # F1, F2, S3, S6, S8 (S4 is cancelled)
    }
    assert r.json()["data"]["pagination"]["total_pages"] == 6


FILTERS: list[tuple[dict[str, str], list[str]]] = [
    ({"therapist_id": T2}, [S[8], S[6], S[4], S[3]]),
    ({"client_id": C3}, [S[8], S[2]]),
    ({"status": "scheduled"}, [S[9], S[7], S[5], S[6], S[2], S[1]]),
    ({"status": "completed,no_show"}, [S[8], S[3]]),
    ({"status": "cancelled", "therapist_id": T2}, [S[4]]),
    ({"location_type": "telehealth"}, [S[2]]),
    ({"start_date": "2027-03-10"}, [S[9], S[8], S[7], S[5], S[6]]),
    ({"end_date": "2027-03-09"}, [S[4], S[2], S[3], S[1]]),
    ({"start_date": "2027-03-09", "end_date": "2027-03-15"}, [S[7], S[5], S[6], S[4]]),
    # S9 starts 2027-03-17 19:00 in New York, but 2027-03-18 08:00 in Tokyo; S8 (03-16 15:00 in
    # New York) is on 03-17 in Tokyo.
    ({"start_date": "2027-03-17", "end_date": "2027-03-17"}, [S[9]]),
    ({"start_date": "2027-03-17", "end_date": "2027-03-17", "time_zone": "Asia/Tokyo"}, [S[8]]),
    ({"start_date": "2027-03-18", "time_zone": "Asia/Tokyo"}, [S[9]]),
    ({"client_id": C1, "location_type": "clinic", "status": "scheduled"}, [S[9], S[7], S[5], S[1]]),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
async def test_filters(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, str], expected: list[str]
) -> None:
    r = await client.get(URL, params=params, headers=clinic.headers("scheduler"))
    assert session_ids(r) == expected
    body = r.json()
    assert body["data"]["summary"]["total_sessions"] == len(expected)
    for key, value in params.items():
        echoed = body["filters"][key]
        assert echoed == (sorted(value.split(",")) if key == "status" else value)


async def test_page_mode_and_cursor_mode_never_overlap_or_skip(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    # Three therapist/client pairs with sessions at the same eight starts: ties broken by id.
    people = [(uid(0xA2C0 + i), uid(0xA3C0 + i)) for i in range(3)]
    sessions = []
    expected: list[tuple[str, str]] = []
    for day in range(8):
        for i, (t, c) in enumerate(people):
            sid = str(uuid.UUID(int=(0xC000 + day * 16 + (7 * i) % 3)))
            start = f"2028-02-{day + 1:02d}T15:00:00Z"
            sessions.append(session(sid, t, c, start, f"2028-02-{day + 1:02d}T16:00:00Z"))
            expected.append((start, sid))
    await import_more(
        db,
        {
            "therapists": [therapist(t, f"Pager {i}") for i, (t, _) in enumerate(people)],
            "clients": [
                client_record(c, f"Paged {i}", therapist_ids=[people[i][0]])
                for i, (_, c) in enumerate(people)
            ],
            "sessions": sessions,
        },
    )
    order = [sid for _, sid in sorted(expected, reverse=True)]
    h = clinic.headers("admin")
    base = {"start_date": "2028-02-01", "limit": "5"}

    by_page: list[str] = []
    for page in range(1, 6):
        r = await client.get(URL, params={**base, "page": str(page)}, headers=h)
        p = r.json()["data"]["pagination"]
        assert p["page"] == page
        assert p["total"] == 24
        assert p["total_pages"] == 5
        assert p["has_previous_page"] is (page > 1)
        assert p["has_next_page"] is (page < 5)
        assert (p["next_cursor"] is None) is (page == 5)
        by_page += session_ids(r)
    assert by_page == order

    by_cursor: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = (
            {**base, "page": "3"} if cursor is None else {**base, "cursor": cursor, "page": "9"}
        )
        if cursor is None:
            params.pop("page")
        r = await client.get(URL, params=params, headers=h)
        pages += 1
        p = r.json()["data"]["pagination"]
        if cursor is not None:
            assert p["page"] is None  # page is ignored with a cursor
            assert p["has_previous_page"] is True
            assert r.json()["filters"]["cursor"] == cursor
        by_cursor += session_ids(r)
        cursor = p["next_cursor"]
        if cursor is None:
            assert p["has_next_page"] is False
            break
    assert by_cursor == order
    assert pages == 5

    # The cursor of a page-mode page continues exactly after that page.
    r = await client.get(URL, params={**base, "page": "2"}, headers=h)
    follow = await client.get(
        URL, params={**base, "cursor": r.json()["data"]["pagination"]["next_cursor"]}, headers=h
    )
    assert session_ids(follow) == order[10:15]


async def test_cursor_is_stable_under_concurrent_inserts(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    first = await client.get(URL, params={"limit": 3}, headers=h)
    assert session_ids(first) == ALL_DESC[:3]
    cursor = first.json()["data"]["pagination"]["next_cursor"]
    # Meanwhile: a newer session (before the cursor) and one among the rows still to come.
    newer, between = uid(0xF10), uid(0xF11)
    await import_more(
        db,
        {
            "sessions": [
                session(newer, T2, C2, "2027-04-01T15:00:00Z", "2027-04-01T16:00:00Z"),
                session(between, T2, C2, "2027-03-09T18:00:00Z", "2027-03-09T19:00:00Z"),
            ]
        },
    )
    rest: list[str] = []
    while cursor:
        r = await client.get(URL, params={"limit": 3, "cursor": cursor}, headers=h)
        rest += session_ids(r)
        cursor = r.json()["data"]["pagination"]["next_cursor"]
    assert rest == [S[5], S[6], between, S[4], S[2], S[3], S[1]]
    assert newer not in rest


async def test_therapist_scope(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("therapist")
    r = await client.get(URL, headers=h)
    assert session_ids(r) == [S[9], S[8], S[7], S[5], S[2], S[1]]
    assert all("authorization" not in s for s in r.json()["data"]["sessions"])
    assert "@" not in r.text
    assert r.json()["data"]["summary"]["total_sessions"] == 6
    caseload = await client.get(URL, params={"client_id": C3}, headers=h)
    assert session_ids(caseload) == [S[8], S[2]]
    own = await client.get(URL, params={"therapist_id": T1}, headers=h)
    assert session_ids(own) == [S[9], S[7], S[5], S[2], S[1]]
    other = await client.get(URL, headers=clinic.headers("therapist2"))
    # T2's own sessions and S2 (T1 with C3, on T2's caseload).
    assert session_ids(other) == [S[8], S[6], S[4], S[2], S[3]]


@pytest.mark.parametrize(
    ("who", "params"),
    [
        ("therapist", {"therapist_id": T2}),
        ("therapist", {"client_id": C2}),
        ("therapist", {"therapist_id": TB}),
        ("admin", {"therapist_id": TB}),
        ("admin", {"client_id": CB}),
        ("admin_b", {"client_id": C1}),
    ],
)
async def test_ids_out_of_scope_behave_like_unknown_ids(
    client: httpx.AsyncClient, clinic: Clinic, who: str, params: dict[str, str]
) -> None:
    hidden = await client.get(URL, params=params, headers=clinic.headers(who))
    unknown = await client.get(
        URL, params={k: str(uuid.uuid4()) for k in params}, headers=clinic.headers(who)
    )
    assert_error(hidden, 404, "NOT_FOUND")
    assert without_request_id(hidden) == without_request_id(unknown)


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


INVALID: list[tuple[dict[str, str], str]] = [
    ({"page": "0"}, "VALIDATION_ERROR"),
    ({"page": "-1"}, "VALIDATION_ERROR"),
    ({"page": "x"}, "VALIDATION_ERROR"),
    ({"limit": "0"}, "VALIDATION_ERROR"),
    ({"limit": "101"}, "VALIDATION_ERROR"),
    ({"status": "scheduled,done"}, "VALIDATION_ERROR"),
    ({"status": "SCHEDULED"}, "VALIDATION_ERROR"),
    ({"location_type": "moon"}, "VALIDATION_ERROR"),
    ({"therapist_id": "123"}, "VALIDATION_ERROR"),
    ({"client_id": "not-a-uuid"}, "VALIDATION_ERROR"),
    ({"start_date": "2027-02-29"}, "VALIDATION_ERROR"),
    ({"end_date": "tomorrow"}, "VALIDATION_ERROR"),
    ({"start_date": "2027-03-10", "end_date": "2027-03-09"}, "VALIDATION_ERROR"),
    ({"start_date": "2027-01-01", "end_date": "2028-01-02"}, "VALIDATION_ERROR"),
    ({"time_zone": "Mars/Base"}, "VALIDATION_ERROR"),
    ({"time_zone": "EST5EDT5"}, "VALIDATION_ERROR"),
    ({"cursor": ""}, "VALIDATION_ERROR"),
    ({"cursor": "x" * 257}, "VALIDATION_ERROR"),
    ({"cursor": "not-a-cursor"}, "INVALID_CURSOR"),
    ({"cursor": "%%%"}, "INVALID_CURSOR"),
    ({"cursor": _cursor([1, 2])}, "INVALID_CURSOR"),
    ({"cursor": _cursor(["sessions", "2027-03-08T14:00:00", S[1]])}, "INVALID_CURSOR"),
    ({"cursor": _cursor(["sessions", "2027-03-08T14:00:00Z", "nope"])}, "INVALID_CURSOR"),
    ({"cursor": _cursor(["sessions", 5, S[1]])}, "INVALID_CURSOR"),
    ({"cursor": _cursor(["sessions", S[1]])}, "INVALID_CURSOR"),
    ({"cursor": _cursor(["sessions", "2027-03-08T14:00:00Z", S[1], 1])}, "INVALID_CURSOR"),
    # A position of another list, and the shape cursors had before they named their list.
    ({"cursor": _cursor(["feeds", "2027-03-08T14:00:00Z", S[1]])}, "INVALID_CURSOR"),
    ({"cursor": _cursor({"t": "2027-03-08T14:00:00Z", "i": S[1]})}, "INVALID_CURSOR"),
]


@pytest.mark.parametrize(("params", "code"), INVALID)
async def test_invalid_parameters_are_400(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, str], code: str
) -> None:
    r = await client.get(URL, params=params, headers=clinic.headers("admin"))
    assert_error(r, 400, code)


async def test_hand_made_valid_cursor_is_accepted(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    cursor = _cursor(["sessions", "2027-03-10T15:00:00Z", S[5]])
    r = await client.get(URL, params={"cursor": cursor}, headers=clinic.headers("admin"))
    assert session_ids(r) == ALL_DESC[4:]


async def test_location_and_statuses_of_every_kind(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(
        URL,
        params=[("status", "scheduled"), ("status", "cancelled"), ("location_type", "telehealth")],
        headers=clinic.headers("admin"),
    )
    assert session_ids(r) == [S[2]]
    assert r.json()["filters"]["status"] == ["cancelled", "scheduled"]
    assert r.json()["data"]["sessions"][0]["location_id"] == L2
    assert ORG_A not in r.text
