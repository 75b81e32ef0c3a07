"""POST /sessions/hold: every check of docs/BOOKING.md, in its order, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from tests.booking.conftest import (
    NY,
    book,
    hold,
    hold_body,
    hold_ok,
    local,
    monday,
    named,
    set_org_settings,
    table_count,
    time_off_day,
    today_ny,
    utc,
)
from tests.fixtures import A1, C1, C2, C3, C4, CB, L1, L2, T1, T2, T3, T4, TB, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent, HoldOccurrence

UNKNOWN = "00000000-0000-0000-0000-0000000fffff"


def slot(day: date, start: str, end: str) -> dict[str, str]:
    return {"start_time": utc(day, start), "end_time": utc(day, end)}


async def test_hold_shape_units_and_audit(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    before = datetime.now(UTC).replace(microsecond=0)
    body = hold_body(
        day, session={"location_id": L1}, hold_seconds=120, metadata={"source": "board"}
    )
    r = await hold(client, booking, body)
    after = datetime.now(UTC)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    held = r.json()
    key = held.pop("hold_key")
    assert len(key) == 32  # token_urlsafe(24): 192 random bits
    expires = datetime.fromisoformat(held.pop("expires_at").replace("Z", "+00:00"))
    assert before + timedelta(seconds=120) <= expires <= after + timedelta(seconds=120)
    assert held == {
        "success": True,
        "occurrences": [slot(day, "13:00", "14:00")],
        "warnings": [],
        "status": "active",
        "hold_seconds": 120,
        "therapist_id": T1,
        "client_id": C1,
        "service_code": "97153",
        "location_id": L1,
        "location_type": "clinic",
        "time_zone": "America/New_York",
        "session_id": None,
    }
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(HoldOccurrence.units, HoldOccurrence.authorization_id, HoldOccurrence.active)
            )
        ).all()
        events = (await conn.execute(select(AuditEvent.action, AuditEvent.details))).all()
    assert [(r.units, str(r.authorization_id), r.active) for r in rows] == [(4, A1, True)]
    assert [e.action for e in events] == ["hold.create"]
    assert events[0].details == {
        "therapist_id": T1,
        "client_id": C1,
        "occurrences": 1,
        "service_code": "97153",
        "hold_seconds": 120,
        "warnings": [],
        "reschedule_session_id": None,
    }

    shown = await client.get(f"/sessions/hold/{key}", headers=booking.headers("therapist"))
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert view["status"] == "active"
    assert view["occurrences"] == [slot(day, "13:00", "14:00")]
    assert view["metadata"] == {"source": "board"}


async def test_default_hold_seconds_come_from_the_organization(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await set_org_settings(db, hold_seconds_default=600)
    held = await hold_ok(client, booking, hold_body(monday(1)))
    assert held["hold_seconds"] == 600


async def test_requires_a_token(client: httpx.AsyncClient, booking: Clinic) -> None:
    r = await client.post("/sessions/hold", json=hold_body(monday(1)))
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHORIZED"


async def test_therapist_holds_only_for_themselves(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    # Role comes before everything else: even a bad range is a 403 here.
    r = await hold(client, booking, hold_body(day, "15:00", "14:00", therapist=T2), "therapist")
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    r = await hold(client, booking, hold_body(day, client=C2), "therapist")  # not on caseload
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    assert r.json()["details"] == {"field": "session.client_id"}
    await hold_ok(client, booking, hold_body(day), "therapist")
    assert await table_count(db, "holds") == 1


@pytest.mark.parametrize(
    ("therapist", "client_id", "field"),
    [
        (UNKNOWN, C1, "session.therapist_id"),
        (T3, C1, "session.therapist_id"),  # inactive
        (T4, C1, "session.therapist_id"),  # archived
        (TB, C1, "session.therapist_id"),  # another organization
        (T1, UNKNOWN, "session.client_id"),
        (T1, C4, "session.client_id"),  # inactive
        (T1, CB, "session.client_id"),  # another organization
    ],
)
async def test_people_must_exist_in_the_organization_and_be_active(
    client: httpx.AsyncClient, booking: Clinic, therapist: str, client_id: str, field: str
) -> None:
    # Existence comes before the range check: a past time still gives 404.
    body = hold_body(today_ny() - timedelta(days=7), therapist=therapist, client=client_id)
    r = await hold(client, booking, body, "admin")
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "NOT_FOUND"
    assert r.json()["details"] == {"field": field}


async def test_unknown_and_inactive_locations(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    r = await hold(client, booking, hold_body(day, session={"location_id": UNKNOWN}))
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await hold(
        client, booking, hold_body(day, session={"location_id": L1, "location_type": "home"})
    )
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")
    assert (
        r.json()["error"] == 'session.location_type: does not match the location\'s type "clinic"'
    )


def _past() -> date:
    return today_ny() - timedelta(days=1)


BAD_RANGES: list[tuple[str, dict[str, Any], str]] = [
    (
        "end before start",
        hold_body(monday(1), "14:00", "13:00"),
        "session: start_time must be before end_time",
    ),
    (
        "too short",
        hold_body(monday(1), "13:00", "13:10"),
        "session: a session lasts 15 to 480 minutes",
    ),
    (
        "too long",
        hold_body(monday(1), "08:00", "16:30"),
        "session: a session lasts 15 to 480 minutes",
    ),
    ("in the past", hold_body(_past(), "13:00", "14:00"), "session: start_time is in the past"),
    (
        "duration disagrees",
        hold_body(monday(1), duration_minutes=30),
        "duration_minutes: does not agree with session.start_time and session.end_time",
    ),
    (
        "no end, no duration",
        hold_body(monday(1), end=None),
        "duration_minutes: required when session.end_time is absent",
    ),
    (
        "first occurrence differs",
        hold_body(monday(1), occurrences=[{"start_time": local(monday(1), "14:00")}]),
        "occurrences[0]: must equal the session block's start_time and end_time",
    ),
    (
        "occurrences overlap",
        hold_body(
            monday(1),
            occurrences=[
                {"start_time": local(monday(1), "13:00")},
                {"start_time": local(monday(1), "13:30")},
            ],
        ),
        "occurrences[1]: overlaps occurrences[0] of the same request",
    ),
    (
        "malformed time",
        hold_body(monday(1), session={"start_time": "next tuesday"}),
        'session.start_time: "next tuesday" is not an ISO 8601 date-time',
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_RANGES, ids=[c[0] for c in BAD_RANGES])
async def test_invalid_ranges(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    case: str,
    body: dict[str, Any],
    message: str,
) -> None:
    r = await hold(client, booking, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert r.json()["error"] == message
    assert await table_count(db, "holds") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hold_seconds": 10}, "hold_seconds"),
        ({"hold_seconds": 901}, "hold_seconds"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"metadata": {"x": "y" * 5000}}, "metadata"),
        ({"metadata": {"n": 2**70}}, "metadata"),
        ({"session": {"service_code": "99999"}}, "session.service_code"),
        (
            {"recurrence": {"rrule": "FREQ=DAILY;COUNT=2"}, "occurrences": [{"start_time": "x"}]},
            "body",
        ),
        ({"occurrences": [{"start_time": "2030-01-01T10:00:00Z"}] * 201}, "occurrences"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_shape_errors(
    client: httpx.AsyncClient, booking: Clinic, change: dict[str, Any], field: str
) -> None:
    body = hold_body(monday(1))
    change = copy.deepcopy(change)
    session = change.pop("session", {})
    body["session"].update(session)
    body.update(change)
    r = await hold(client, booking, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert [f["field"] for f in r.json()["details"]["fields"]] == [field]


_HELD = {"start_time": local(monday(1), "13:00"), "end_time": local(monday(1), "14:00")}
_ASK = {"therapist_id": T1, "client_id": C1, "time_zone": "America/New_York"}
_MOVE = {"start_time": local(monday(1), "15:00"), "time_zone": "America/New_York"}
# A body of each booking POST with one value of another JSON type than documented: lax parsing took
# "60" or 120.0 for an integer and true for 1; a JSON body is held to its types (docs/DECISIONS.md).
WRONG_JSON_TYPES: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "hold duration as text",
        "/sessions/hold",
        hold_body(monday(1), duration_minutes="60"),
        "duration_minutes",
        "must be an integer or null, not a string",
    ),
    (
        "hold seconds as a fraction",
        "/sessions/hold",
        hold_body(monday(1), hold_seconds=120.0),
        "hold_seconds",
        "must be an integer or null, not a number",
    ),
    (
        "exdates as a number",
        "/sessions/hold",
        hold_body(monday(1), recurrence={"rrule": "FREQ=WEEKLY;COUNT=2", "exdates": 20270101}),
        "recurrence.exdates",
        "must be an array, not an integer",
    ),
    (
        "an exdate as a number",
        "/sessions/hold",
        hold_body(monday(1), recurrence={"rrule": "FREQ=WEEKLY;COUNT=2", "exdates": [0]}),
        "recurrence.exdates",
        "item 0 must be a string, not an integer",
    ),
    (
        "confirm offset as text",
        "/sessions/confirm",
        {"hold_key": "k", "session": _HELD, "start_time_offset_minutes": "-300"},
        "start_time_offset_minutes",
        "must be an integer or null, not a string",
    ),
    (
        "suggest duration as text",
        "/suggest-alternative-times",
        {**_ASK, "duration_minutes": "60"},
        "duration_minutes",
        "must be an integer, not a string",
    ),
    (
        "suggest limit as a boolean",
        "/suggest-alternative-times",
        {**_ASK, "duration_minutes": 60, "limit": True},
        "limit",
        "must be an integer, not a boolean",
    ),
    (
        "suggest start date as a number",
        "/suggest-alternative-times",
        {**_ASK, "duration_minutes": 60, "start_date": 0},
        "start_date",
        "must be a string or null, not an integer",
    ),
    (
        "reschedule duration as text",
        f"/sessions/{UNKNOWN}/reschedule",
        {**_MOVE, "duration_minutes": "90"},
        "duration_minutes",
        "must be an integer or null, not a string",
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "body", "field", "message"),
    WRONG_JSON_TYPES,
    ids=[c[0] for c in WRONG_JSON_TYPES],
)
async def test_body_values_have_their_json_types(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    case: str,
    path: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    r = await client.post(path, json=body, headers=booking.headers("scheduler"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert r.json()["error"] == f"Invalid request: {field}: {message}"
    assert r.json()["details"] == {
        "fields": [{"field": field, "message": message, "type": "value_error"}]
    }
    assert await table_count(db, "holds") == 0
    assert await table_count(db, "audit_events") == 0


def next_spring_forward(tz: ZoneInfo, after: date) -> date:
    """The first day after `after` whose 02:30 does not exist in `tz`."""
    day = after + timedelta(days=1)
    while True:
        naive = datetime(day.year, day.month, day.day, 2, 30)
        if naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
            return day
        day += timedelta(days=1)


async def test_nonexistent_local_time(client: httpx.AsyncClient, booking: Clinic) -> None:
    gap = next_spring_forward(NY, today_ny() + timedelta(days=21))
    r = await hold(client, booking, hold_body(gap, "02:30", "03:30"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "NONEXISTENT_LOCAL_TIME"
    assert r.json()["details"]["field"] == "session.start_time"
    weekly = hold_body(
        gap - timedelta(days=14),
        "02:30",
        None,
        duration_minutes=60,
        recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"},
    )
    r = await hold(client, booking, weekly)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "NONEXISTENT_LOCAL_TIME"
    assert r.json()["details"]["occurrence_index"] == 2


async def test_outside_hours_blocks_with_alternatives(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    r = await hold(client, booking, hold_body(day, "17:30", "18:30"))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "OUTSIDE_AVAILABILITY"
    assert body["error"] == (
        f"The occurrence on {named(day, '17:30')} is outside the therapist's working hours"
    )
    assert body["details"] == {
        "occurrence_index": 0,
        "reason": "outside_hours",
        "requested": slot(day, "17:30", "18:30"),
        "alternatives": [
            slot(day, "14:00", "15:00"),
            slot(day, "15:00", "16:00"),
            slot(day, "16:00", "17:00"),
        ],
    }
    assert await table_count(db, "holds") == 0


async def test_time_off_blocks(client: httpx.AsyncClient, booking: Clinic) -> None:
    off = time_off_day()
    r = await hold(client, booking, hold_body(off))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "OUTSIDE_AVAILABILITY"
    assert r.json()["error"] == (
        f"The occurrence on {named(off, '13:00')} is during the therapist's time off"
    )
    assert r.json()["details"]["reason"] == "time_off"
    assert r.json()["details"]["alternatives"] == [
        slot(off - timedelta(days=1), "16:00", "17:00"),
        slot(off + timedelta(days=1), "09:00", "10:00"),
        slot(off + timedelta(days=1), "10:00", "11:00"),
    ]


async def test_insufficient_break_between_places(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day, session={"location_id": L1}))
    r = await hold(
        client, booking, hold_body(day, "14:05", "15:00", client=C2, session={"location_id": L2})
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "INSUFFICIENT_BREAK"
    assert r.json()["error"] == (
        f"The occurrence on {named(day, '14:05')} leaves less than 15 minutes to travel from or "
        "to the therapist's session at another location"
    )
    assert r.json()["details"] == {
        "occurrence_index": 0,
        "buffer_minutes": 15,
        "conflict": slot(day, "13:00", "14:00"),
        "requested": slot(day, "14:05", "15:00"),
        "alternatives": [
            slot(day, "11:45", "12:40"),
            slot(day, "14:15", "15:10"),
            slot(day, "15:15", "16:10"),
        ],
    }
    # Same place: back to back is fine (and C3 has no authorization: that check comes later).
    r = await hold(
        client, booking, hold_body(day, "14:00", "15:00", client=C3, session={"location_id": L1})
    )
    assert r.json()["code"] == "AUTHORIZATION_MISSING"


async def test_availability_warn_and_off(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    await set_org_settings(db, availability_policy="warn")
    held = await hold_ok(client, booking, hold_body(day, "17:30", "18:30"))
    assert held["warnings"] == [
        {
            "code": "OUTSIDE_AVAILABILITY",
            "message": f"The occurrence on {named(day, '17:30')} is outside the therapist's "
            "working hours",
            "occurrence_index": 0,
            "reason": "outside_hours",
        }
    ]
    await set_org_settings(db, availability_policy="off")
    held = await hold_ok(client, booking, hold_body(day + timedelta(days=1), "18:30", "19:30"))
    assert held["warnings"] == []


async def test_therapist_conflict(client: httpx.AsyncClient, booking: Clinic, db: Database) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day))
    r = await hold(client, booking, hold_body(day, "13:30", "14:30", client=C2))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "THERAPIST_CONFLICT"
    assert r.json()["error"] == (
        f"The occurrence on {named(day, '13:30')} overlaps another session of the therapist"
    )
    assert r.json()["details"] == {
        "occurrence_index": 0,
        "conflict": slot(day, "13:00", "14:00"),
        "requested": slot(day, "13:30", "14:30"),
        "alternatives": [
            slot(day, "12:00", "13:00"),
            slot(day, "14:00", "15:00"),
            slot(day, "15:00", "16:00"),
        ],
    }
    assert await table_count(db, "holds", "status = 'active'") == 0


async def test_conflict_names_the_occurrence_in_the_request_time_zone(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    """T1 works in New York; a request made in Tokyo reads its occurrence in Tokyo time, where
    13:30 on a New York Monday is already Tuesday."""
    day = monday(1)
    await book(client, booking, hold_body(day))
    times = {"start_time": utc(day, "13:30"), "end_time": utc(day, "14:30")}
    r = await hold(
        client, booking, hold_body(day, client=C2, session=times, time_zone="Asia/Tokyo")
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "THERAPIST_CONFLICT"
    tokyo = datetime.combine(day, time(13, 30), NY).astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.date() == day + timedelta(days=1)
    assert r.json()["error"] == (
        f"The occurrence on {named(tokyo.date(), f'{tokyo:%H:%M}', 'Asia/Tokyo')} overlaps "
        "another session of the therapist"
    )
    assert r.json()["details"]["occurrence_index"] == 0


async def test_client_conflict(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day, "14:00", "15:00"))
    # T2 works 08-12 and 13-16 Chicago time (09-13, 14-17 New York).
    r = await hold(client, booking, hold_body(day, "14:30", "15:30", therapist=T2))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "CLIENT_CONFLICT"
    assert r.json()["error"] == (
        f"The occurrence on {named(day, '14:30')} overlaps another session of the client"
    )
    assert r.json()["details"]["conflict"] == slot(day, "14:00", "15:00")


async def test_hold_conflicts(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    await hold_ok(client, booking, hold_body(day, "14:00", "15:00"))
    r = await hold(client, booking, hold_body(day, "14:30", "15:30", client=C3))
    assert (r.status_code, r.json()["code"]) == (409, "THERAPIST_HOLD_CONFLICT")
    assert r.json()["error"] == (
        f"The occurrence on {named(day, '14:30')} overlaps another held slot of the therapist"
    )
    assert r.json()["details"]["conflict"] == slot(day, "14:00", "15:00")
    r = await hold(client, booking, hold_body(day, "14:30", "15:30", therapist=T2))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_HOLD_CONFLICT")
    assert r.json()["error"] == (
        f"The occurrence on {named(day, '14:30')} overlaps another held slot of the client"
    )
    # Back to back with the hold is not an overlap.
    await hold_ok(client, booking, hold_body(day, "15:00", "16:00"))


async def test_session_conflict_wins_over_hold_conflict_and_names_the_occurrence(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day + timedelta(weeks=2), "13:00", "14:00"))
    await hold_ok(client, booking, hold_body(day + timedelta(weeks=2), "14:00", "15:00"))
    weekly = hold_body(day, "13:30", "14:30", recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"})
    r = await hold(client, booking, weekly)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "THERAPIST_CONFLICT"
    # People read the third occurrence by its date; programs get its zero-based index.
    assert r.json()["error"] == (
        f"The occurrence on {named(day + timedelta(weeks=2), '13:30')} overlaps another session "
        "of the therapist"
    )
    assert r.json()["details"]["occurrence_index"] == 2
    assert r.json()["details"]["conflict"] == slot(day + timedelta(weeks=2), "13:00", "14:00")
    assert await table_count(db, "holds") == 2  # the failed request left nothing behind
    assert await table_count(db, "hold_occurrences") == 2


async def test_authorization_missing(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    r = await hold(client, booking, hold_body(day, client=C3))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "AUTHORIZATION_MISSING"
    assert r.json()["error"] == (
        "No approved authorization of the client covers service 97153 for the occurrence on "
        f"{named(day, '13:00')}"
    )
    details = r.json()["details"]
    forecast = details.pop("forecast")
    assert details == {
        "occurrence_index": 0,
        "service_code": "97153",
        "date": day.isoformat(),
        "reason": "no_authorization",
    }
    assert forecast["bookable"] is False
    assert forecast["summary"] == [
        "Occurrence 1: no authorization of the client covers service 97153"
    ]
    await set_org_settings(db, authorization_policy="warn")
    held = await hold_ok(client, booking, hold_body(day, client=C3))
    assert [w["code"] for w in held["warnings"]] == ["AUTHORIZATION_MISSING"]
    await set_org_settings(db, authorization_policy="off")
    held = await hold_ok(client, booking, hold_body(day + timedelta(days=1), client=C3))
    assert held["warnings"] == []


async def test_authorization_exhausted(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    code = {"service_code": "97155"}
    # 8 units of 97155: two one-hour sessions, the second only held.
    await book(client, booking, hold_body(day, "09:00", "10:00", session=code))
    await hold_ok(client, booking, hold_body(day, "10:00", "11:00", session=code))
    r = await hold(client, booking, hold_body(day, "13:00", "13:15", session=code))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "AUTHORIZATION_EXHAUSTED"
    assert r.json()["error"] == (
        "Not enough authorized units of service 97155 left for the occurrence on "
        f"{named(day, '13:00')}"
    )
    details = r.json()["details"]
    forecast = details.pop("forecast")
    assert details == {
        "occurrence_index": 0,
        "service_code": "97155",
        "date": day.isoformat(),
        "reason": "units_exhausted",
        "authorization_id": A1,
        "units_required": 1,
        "units_remaining": 0,
    }
    assert forecast["occurrences"][0]["units_remaining"] is None
    assert forecast["authorizations"][0]["units_remaining_before"] == 0
    # A therapist learns why, but not the authorization's figures.
    r = await hold(client, booking, hold_body(day, "13:00", "13:15", session=code), "therapist")
    assert r.json()["code"] == "AUTHORIZATION_EXHAUSTED"
    details = r.json()["details"]
    forecast = details.pop("forecast")
    assert details == {
        "occurrence_index": 0,
        "service_code": "97155",
        "date": day.isoformat(),
        "reason": "units_exhausted",
    }
    assert "authorizations" not in forecast
    assert forecast["occurrences"][0]["reasons"] == [
        {
            "code": "AUTHORIZATION_EXHAUSTED",
            "message": r.json()["error"],
            "blocking": True,
            "service_code": "97155",
            "date": day.isoformat(),
            "reason": "units_exhausted",
        }
    ]
    assert "units_remaining" not in forecast["occurrences"][0]


async def test_units_add_up_within_one_recurring_request(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    weekly = hold_body(
        day,
        "13:00",
        "14:00",
        session={"service_code": "97155"},
        recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"},
    )
    r = await hold(client, booking, weekly)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "AUTHORIZATION_EXHAUSTED"
    assert r.json()["details"]["occurrence_index"] == 2
    assert r.json()["details"]["units_remaining"] == 0
    await set_org_settings(db, authorization_policy="warn")
    held = await hold_ok(client, booking, weekly)
    assert held["warnings"] == [
        {
            "code": "AUTHORIZATION_EXHAUSTED",
            "message": "Not enough authorized units of service 97155 left for the occurrence on "
            f"{named(day + timedelta(weeks=2), '13:00')}",
            "occurrence_index": 2,
            "reason": "units_exhausted",
        }
    ]


async def test_recurrence_with_exdates(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    body = hold_body(
        day,
        recurrence={
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4",
            "exdates": [(day + timedelta(days=2)).isoformat()],
        },
    )
    held = await hold_ok(client, booking, body)
    assert held["occurrences"] == [
        slot(day, "13:00", "14:00"),
        slot(day + timedelta(days=7), "13:00", "14:00"),
        slot(day + timedelta(days=9), "13:00", "14:00"),
    ]


async def test_explicit_occurrences(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    later = day + timedelta(days=1)
    body = hold_body(
        day,
        occurrences=[
            {"start_time": local(day, "13:00")},
            {"start_time": utc(later, "10:00"), "end_time": utc(later, "11:30")},
        ],
    )
    held = await hold_ok(client, booking, body)
    assert held["occurrences"] == [slot(day, "13:00", "14:00"), slot(later, "10:00", "11:30")]


async def test_weekly_keeps_local_time_across_daylight_saving(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    change = next_spring_forward(NY, today_ny() + timedelta(days=8))
    first_monday = change - timedelta(days=6)
    body = hold_body(first_monday, recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=2"})
    held = await hold_ok(client, booking, body)
    starts = [o["start_time"] for o in held["occurrences"]]
    assert starts == [
        f"{first_monday.isoformat()}T18:00:00Z",  # 13:00 EST
        f"{(first_monday + timedelta(days=7)).isoformat()}T17:00:00Z",  # 13:00 EDT
    ]


async def test_get_hold_access(client: httpx.AsyncClient, booking: Clinic) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)))
    key = held["hold_key"]
    for who in ("therapist2", "admin_b"):
        r = await client.get(f"/sessions/hold/{key}", headers=booking.headers(who))
        assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND")
    r = await client.get("/sessions/hold/nope", headers=booking.headers("admin"))
    assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND")
    r = await client.get(f"/sessions/hold/{key}", headers=booking.headers("admin"))
    assert r.status_code == 200


async def test_release(client: httpx.AsyncClient, booking: Clinic, db: Database) -> None:
    day = monday(1)
    held = await hold_ok(client, booking, hold_body(day))
    key = held["hold_key"]
    r = await client.delete(f"/sessions/hold/{key}", headers=booking.headers("therapist2"))
    assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND")
    r = await client.delete(f"/sessions/hold/{key}", headers=booking.headers("therapist"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "hold_key": key,
        "released": True,
        "already_released": False,
        "warnings": [],
    }
    assert await table_count(db, "hold_occurrences", "active") == 0
    r = await client.delete(f"/sessions/hold/{key}", headers=booking.headers("scheduler"))
    assert r.json()["already_released"] is True
    shown = await client.get(f"/sessions/hold/{key}", headers=booking.headers("scheduler"))
    assert shown.json()["status"] == "released"
    # The slot is free again, and a confirmed hold cannot be released.
    again = await book(client, booking, hold_body(day))
    assert again["session"]["start_time"] == utc(day, "13:00")
    confirmed_key = again["hold_key"]
    r = await client.delete(f"/sessions/hold/{confirmed_key}", headers=booking.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (409, "HOLD_ALREADY_CONFIRMED")
    actions = await table_count(db, "audit_events", "action = 'hold.release'")
    assert actions == 1


async def test_booking_metrics(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    await book(client, booking, hold_body(day))
    await hold(client, booking, hold_body(day))
    text = (await client.get("/metrics")).text
    assert 'therapy_scheduler_booking_outcomes_total{action="hold",outcome="ok"} 1.0' in text
    assert 'therapy_scheduler_booking_outcomes_total{action="confirm",outcome="ok"} 1.0' in text
    assert (
        'therapy_scheduler_booking_outcomes_total{action="hold",outcome="THERAPIST_CONFLICT"} 1.0'
        in text
    )
