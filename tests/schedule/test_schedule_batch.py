"""GET|POST /get-schedule-data-batch through HTTP (docs/API.md): shapes, pagination, scoping, invalid
input, availability (in each therapist's zone, across DST) and conflicts over the whole range."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.fixtures import (
    A1,
    C1,
    C2,
    C3,
    CB,
    L1,
    L2,
    ORG_A,
    T1,
    T2,
    TB,
    U_ADMIN,
    Clinic,
    S,
)
from tests.support import (
    assert_error,
    import_more,
    session,
    session_ids,
    therapist,
    uid,
    without_request_id,
)
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import Hold, HoldOccurrence

URL = "/get-schedule-data-batch"
WEEK = {"start_date": "2027-03-08", "end_date": "2027-03-10"}
TWO_WEEKS = {"start_date": "2027-03-08", "end_date": "2027-03-20"}
# Sessions of org A on 2027-03-08..10 (New York days), ordered by start_time, id.
WEEK_ORDER = [S[1], S[3], S[2], S[4], S[6], S[5]]


def _slot(start: str, end: str) -> dict[str, str]:
    return {"start_time": start, "end_time": end}


async def test_get_returns_exact_session_shape_and_echo_with_defaults(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(URL, params=WEEK, headers=clinic.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["vary"] == "Authorization"
    body = r.json()
    assert set(body) == {"success", "data", "request_parameters"}
    assert body["success"] is True
    assert set(body["data"]) == {"sessions", "pagination", "performance"}
    assert [s["id"] for s in body["data"]["sessions"]] == WEEK_ORDER
    assert body["data"]["sessions"][0] == {
        "id": S[1],
        "therapist_id": T1,
        "client_id": C1,
        "start_time": "2027-03-08T14:00:00Z",
        "end_time": "2027-03-08T16:00:00Z",
        "duration_minutes": 120,
        "status": "scheduled",
        "location_type": "clinic",
        "location_id": L1,
        "service_code": "97153",
        "series_id": None,
        "therapist": {"id": T1, "full_name": "Tara Quinn"},
        "client": {"id": C1, "full_name": "Casey Cole"},
        # A1/97153: 40 approved, S1 (8) + S5, S7, S9 (4 each) consume 20; S1 costs 8 units.
        "authorization": {
            "id": A1,
            "end_date": "2027-06-30",
            "sessions_remaining": 2,
            "units_remaining": 20,
        },
    }
    # A session without an authorization still has the key (admin may see authorizations).
    assert body["data"]["sessions"][2]["authorization"] is None
    assert body["data"]["pagination"] == {
        "total_records": 6,
        "batch_size": 100,
        "current_offset": 0,
        "has_more": False,
        "next_offset": None,
    }
    performance = body["data"]["performance"]
    assert set(performance) == {"query_time_ms", "cache_hit"}
    assert performance["query_time_ms"] >= 0
    assert body["request_parameters"] == {
        "start_date": "2027-03-08",
        "end_date": "2027-03-10",
        "therapist_ids": [],
        "client_ids": [],
        "batch_size": 100,
        "offset": 0,
        "include_availability": False,
        "include_conflicts": False,
        "time_zone": "America/New_York",
    }


async def test_post_answers_like_get(client: httpx.AsyncClient, clinic: Clinic) -> None:
    params = {**WEEK, "therapist_ids": f"{T2},{T1}", "include_conflicts": "1", "batch_size": "3"}
    got = await client.get(URL, params=params, headers=clinic.headers("scheduler"))
    posted = await client.post(
        URL,
        json={**WEEK, "therapist_ids": [T2, T1], "include_conflicts": True, "batch_size": 3},
        headers=clinic.headers("scheduler"),
    )
    assert got.status_code == posted.status_code == 200, posted.text
    a, b = got.json(), posted.json()
    for body in (a, b):
        body["data"].pop("performance")
    assert a == b
    assert a["request_parameters"]["therapist_ids"] == [T2, T1]
    assert a["request_parameters"]["include_conflicts"] is True
    assert a["request_parameters"]["include_availability"] is False


async def test_ids_comma_separated_and_repeated(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    comma = await client.get(URL, params={**WEEK, "client_ids": f"{C2},{C3}"}, headers=h)
    repeated = await client.get(
        URL, params=[*WEEK.items(), ("client_ids", C2), ("client_ids", C3)], headers=h
    )
    assert session_ids(comma) == session_ids(repeated) == [S[3], S[2], S[4], S[6]]
    only_t2 = await client.get(URL, params={**WEEK, "therapist_ids": T2}, headers=h)
    assert session_ids(only_t2) == [S[3], S[4], S[6]]


async def test_batches_cover_every_session_once(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    seen: list[str] = []
    offset: int | None = 0
    pages = []
    while offset is not None:
        r = await client.get(URL, params={**WEEK, "batch_size": 4, "offset": offset}, headers=h)
        pages.append(r.json()["data"]["pagination"])
        seen += session_ids(r)
        offset = r.json()["data"]["pagination"]["next_offset"]
    assert seen == WEEK_ORDER
    assert pages == [
        {
            "total_records": 6,
            "batch_size": 4,
            "current_offset": 0,
            "has_more": True,
            "next_offset": 4,
        },
        {
            "total_records": 6,
            "batch_size": 4,
            "current_offset": 4,
            "has_more": False,
            "next_offset": None,
        },
    ]
    beyond = await client.get(URL, params={**WEEK, "offset": 50}, headers=h)
    assert session_ids(beyond) == []
    assert beyond.json()["data"]["pagination"]["has_more"] is False


async def test_therapist_sees_own_and_caseload_sessions_without_authorization(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(URL, params=TWO_WEEKS, headers=clinic.headers("therapist"))
    # Own sessions (S1, S2, S5, S7, S9) and S8: T2 with C3, a client on T1's caseload.
    assert session_ids(r) == [S[1], S[2], S[5], S[7], S[8], S[9]]
    for s in r.json()["data"]["sessions"]:
        assert "authorization" not in s
        assert "@" not in str(s)
    caseload = await client.get(
        URL, params={**TWO_WEEKS, "client_ids": C3}, headers=clinic.headers("therapist")
    )
    assert session_ids(caseload) == [S[2], S[8]]
    mine = await client.get(
        URL, params={**TWO_WEEKS, "therapist_ids": T1}, headers=clinic.headers("therapist")
    )
    assert session_ids(mine) == [S[1], S[2], S[5], S[7], S[9]]


@pytest.mark.parametrize("field", ["therapist_ids", "client_ids"])
async def test_ids_out_of_scope_behave_like_unknown_ids(
    client: httpx.AsyncClient, clinic: Clinic, field: str
) -> None:
    unknown = str(uuid.uuid4())
    foreign = TB if field == "therapist_ids" else CB
    hidden = T2 if field == "therapist_ids" else C2  # same org, not visible to therapist T1
    cases = [
        ("admin", foreign, unknown),
        ("therapist", hidden, unknown),
        ("therapist", foreign, unknown),
    ]
    for who, invisible, missing in cases:
        for method in ("GET", "POST"):
            if method == "GET":
                a = await client.get(
                    URL, params={**WEEK, field: invisible}, headers=clinic.headers(who)
                )
                b = await client.get(
                    URL, params={**WEEK, field: missing}, headers=clinic.headers(who)
                )
            else:
                a = await client.post(
                    URL, json={**WEEK, field: [invisible]}, headers=clinic.headers(who)
                )
                b = await client.post(
                    URL, json={**WEEK, field: [missing]}, headers=clinic.headers(who)
                )
            assert_error(a, 404, "NOT_FOUND")
            assert a.status_code == b.status_code
            assert without_request_id(a) == without_request_id(b)
            assert invisible not in a.text


async def test_org_b_sees_only_its_own_sessions(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.get(URL, params=WEEK, headers=clinic.headers("admin_b"))
    # Org B's zone is Los Angeles: its session at 17:00Z on 2027-03-08 is in range.
    assert session_ids(r) == [uid(0xB601)]
    assert r.json()["request_parameters"]["time_zone"] == "America/Los_Angeles"


GET_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"end_date": "2027-03-08"}, "start_date"),
    ({"start_date": "2027-03-08"}, "end_date"),
    ({"start_date": "2027-02-30", "end_date": "2027-03-08"}, "start_date"),
    ({"start_date": "2027-3-8", "end_date": "2027-03-08"}, "start_date"),
    ({"start_date": "03/08/2027", "end_date": "2027-03-08"}, "start_date"),
    ({"start_date": "2027-03-08T00:00:00", "end_date": "2027-03-08"}, "start_date"),
    ({"start_date": "2027-03-09", "end_date": "2027-03-08"}, "start_date must not be after"),
    ({"start_date": "2027-01-01", "end_date": "2028-01-02"}, "366 days"),
    # Found by schema fuzzing: the day after 9999-12-31 overflowed into a 500.
    ({"start_date": "9999-12-31", "end_date": "9999-12-31"}, "between 1900-01-01 and 2199-12-31"),
    ({"start_date": "0001-01-01", "end_date": "0001-01-01"}, "between 1900-01-01 and 2199-12-31"),
    ({**WEEK, "batch_size": "0"}, "batch_size"),
    ({**WEEK, "batch_size": "501"}, "batch_size"),
    ({**WEEK, "batch_size": "ten"}, "batch_size"),
    ({**WEEK, "offset": "-1"}, "offset"),
    ({**WEEK, "include_availability": "yes"}, "include_availability"),
    ({**WEEK, "include_conflicts": "2"}, "include_conflicts"),
    ({**WEEK, "time_zone": "Mars/Base"}, 'unknown time zone "Mars/Base"'),
    ({**WEEK, "time_zone": "+05:00"}, "time_zone"),
    ({**WEEK, "therapist_ids": "not-a-uuid"}, "therapist_ids"),
    ({**WEEK, "client_ids": f"{C1},1234"}, "client_ids"),
]


@pytest.mark.parametrize(("params", "mentions"), GET_INVALID)
async def test_get_invalid_parameters_are_400(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, Any], mentions: str
) -> None:
    r = await client.get(URL, params=params, headers=clinic.headers("admin"))
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert mentions in body["error"]
    assert body["details"]["fields"]


async def test_more_than_500_ids_is_400_and_500_is_accepted(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    many = [str(uuid.uuid4()) for _ in range(501)]
    r = await client.post(URL, json={**WEEK, "therapist_ids": many}, headers=h)
    assert "at most 500 ids" in assert_error(r, 400, "VALIDATION_ERROR")["error"]
    r = await client.get(URL, params={**WEEK, "client_ids": ",".join(many)}, headers=h)
    assert_error(r, 400, "VALIDATION_ERROR")
    # 500 unknown ids pass validation and are then simply not found.
    r = await client.post(URL, json={**WEEK, "therapist_ids": many[:500]}, headers=h)
    assert_error(r, 404, "NOT_FOUND")


async def test_limits_are_inclusive(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    r = await client.get(
        URL,
        params={"start_date": "2027-01-01", "end_date": "2028-01-01", "batch_size": 500},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["pagination"]["total_records"] == 9
    one = await client.get(URL, params={**WEEK, "batch_size": 1}, headers=h)
    assert session_ids(one) == [S[1]]


POST_INVALID: list[dict[str, Any]] = [
    {**WEEK, "include_availability": "yes"},
    {**WEEK, "include_conflicts": 2},
    {**WEEK, "batch_size": 0},
    {**WEEK, "offset": -1},
    {**WEEK, "therapist_ids": ["nope"]},
    {**WEEK, "therapist_ids": [1, 2]},
    {**WEEK, "time_zone": "Mars/Base"},
    {**WEEK, "start_date": "2027-13-01"},
    {**WEEK, "unknown_field": 1},
    {"start_date": "2027-03-08"},
]


@pytest.mark.parametrize("payload", POST_INVALID)
async def test_post_invalid_bodies_are_400(
    client: httpx.AsyncClient, clinic: Clinic, payload: dict[str, Any]
) -> None:
    r = await client.post(URL, json=payload, headers=clinic.headers("admin"))
    assert_error(r, 400, "VALIDATION_ERROR")


# In a JSON body ids are arrays of ids, booleans true/false and numbers numbers: the query string's
# readings ("a,b", "true", "3"), which GET keeps (test_post_answers_like_get), are refused in a body,
# each naming its field (docs/DECISIONS.md).
POST_WRONG_TYPES: list[tuple[dict[str, Any], str, str, str]] = [
    ({"therapist_ids": T1}, "therapist_ids", "must be an array, not a string", "value_error"),
    ({"client_ids": 7}, "client_ids", "must be an array, not an integer", "value_error"),
    (
        {"therapist_ids": {"id": T1}},
        "therapist_ids",
        "must be an array, not an object",
        "value_error",
    ),
    (
        {"therapist_ids": [f"{T1},{T2}"]},
        "therapist_ids.0",
        "Input should be a valid UUID, invalid length: found 73",
        "uuid_parsing",
    ),
    (
        {"client_ids": [C1, [C2]]},
        "client_ids",
        "item 1 must be a string, not an array",
        "value_error",
    ),
    (
        {"include_availability": "true"},
        "include_availability",
        "must be true or false, not a string",
        "value_error",
    ),
    (
        {"include_conflicts": 1},
        "include_conflicts",
        "must be true or false, not an integer",
        "value_error",
    ),
    ({"batch_size": "3"}, "batch_size", "must be an integer, not a string", "value_error"),
    ({"offset": 2.0}, "offset", "must be an integer, not a number", "value_error"),
    ({"start_date": 20270308}, "start_date", "must be a string, not an integer", "value_error"),
    ({"time_zone": 5}, "time_zone", "must be a string or null, not an integer", "value_error"),
]


@pytest.mark.parametrize(
    ("change", "field", "message", "kind"),
    POST_WRONG_TYPES,
    ids=[f"{c[1]}-{type(next(iter(c[0].values()))).__name__}" for c in POST_WRONG_TYPES],
)
async def test_post_body_values_have_their_json_types(
    client: httpx.AsyncClient,
    clinic: Clinic,
    change: dict[str, Any],
    field: str,
    message: str,
    kind: str,
) -> None:
    r = await client.post(URL, json={**WEEK, **change}, headers=clinic.headers("admin"))
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["error"] == f"Invalid request: {field}: {message}"
    assert body["details"] == {"fields": [{"field": field, "message": message, "type": kind}]}


@pytest.mark.parametrize("raw", [b"[]", b'"2027-03-08"', b"null", b"42"])
async def test_post_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, clinic: Clinic, raw: bytes
) -> None:
    r = await client.post(
        URL, content=raw, headers={**clinic.headers("admin"), "content-type": "application/json"}
    )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"]["fields"][0]["field"] == "body"


async def test_availability_windows_and_free_slots(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(
        URL,
        params={**WEEK, "include_availability": "true", "therapist_ids": f"{T1},{T2}"},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    entries = r.json()["data"]["availability"]
    assert [(e["therapist_id"], e["date"]) for e in entries] == [
        (t, d) for t in (T1, T2) for d in ("2027-03-08", "2027-03-09", "2027-03-10")
    ]
    assert entries[0] == {
        "therapist_id": T1,
        "date": "2027-03-08",
        "time_zone": "America/New_York",
        "windows": [_slot("2027-03-08T14:00:00Z", "2027-03-08T22:00:00Z")],
        # S1 14:00-16:00 and S2 16:05-17:05 are busy.
        "free_slots": [
            _slot("2027-03-08T16:00:00Z", "2027-03-08T16:05:00Z"),
            _slot("2027-03-08T17:05:00Z", "2027-03-08T22:00:00Z"),
        ],
    }
    # 2027-03-10 is a day off for T1: no windows at all.
    assert entries[2]["windows"] == entries[2]["free_slots"] == []
    # T2 works 08-12 and 13-16 in Chicago; the cancelled S4 (03-09 15:00Z) frees its slot.
    assert entries[4] == {
        "therapist_id": T2,
        "date": "2027-03-09",
        "time_zone": "America/Chicago",
        "windows": [
            _slot("2027-03-09T14:00:00Z", "2027-03-09T18:00:00Z"),
            _slot("2027-03-09T19:00:00Z", "2027-03-09T22:00:00Z"),
        ],
        "free_slots": [
            _slot("2027-03-09T14:00:00Z", "2027-03-09T18:00:00Z"),
            _slot("2027-03-09T19:00:00Z", "2027-03-09T22:00:00Z"),
        ],
    }
    assert entries[3]["free_slots"] == [  # completed S3 08:00-09:00 CST is busy
        _slot("2027-03-08T15:00:00Z", "2027-03-08T18:00:00Z"),
        _slot("2027-03-08T19:00:00Z", "2027-03-08T22:00:00Z"),
    ]


async def test_availability_defaults_to_therapists_of_the_returned_page(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    first = await client.get(
        URL, params={**WEEK, "include_availability": "1", "batch_size": 1}, headers=h
    )
    assert {e["therapist_id"] for e in first.json()["data"]["availability"]} == {T1}
    second = await client.get(
        URL, params={**WEEK, "include_availability": "1", "batch_size": 1, "offset": 1}, headers=h
    )
    assert {e["therapist_id"] for e in second.json()["data"]["availability"]} == {T2}
    # A therapist gets availability only for themselves, even for caseload sessions of others.
    mine = await client.get(
        URL,
        params={**TWO_WEEKS, "include_availability": "1"},
        headers=clinic.headers("therapist"),
    )
    assert {e["therapist_id"] for e in mine.json()["data"]["availability"]} == {T1}
    assert len(mine.json()["data"]["availability"]) == 13


async def test_extra_hours_and_holds_shape_free_slots(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    # Extra hours on Saturday 2027-03-13 (10:00-12:00 EST), and on Friday after hours.
    await import_more(
        db,
        {
            "therapists": [
                therapist(
                    T1,
                    "Tara Quinn",
                    credential="BCBA",
                    email="tara@alpha.example",
                    phone="+1-555-0101",
                    time_off=[
                        {"start": "2027-03-10T00:00", "end": "2027-03-11T00:00"},
                        {"start": "2027-03-13T10:00", "end": "2027-03-13T12:00", "kind": "extra"},
                        {"start": "2027-03-12T17:00", "end": "2027-03-12T18:30", "kind": "extra"},
                    ],
                )
            ]
        },
    )
    now = utcnow()
    hold_id, expired_id = uuid.uuid4(), uuid.uuid4()
    async with db.write() as conn:
        for hid, expires in ((hold_id, now + timedelta(minutes=5)), (expired_id, now)):
            await conn.execute(
                insert(Hold).values(
                    id=hid,
                    organization_id=uuid.UUID(ORG_A),
                    hold_key=hid.hex,
                    therapist_id=uuid.UUID(T1),
                    client_id=uuid.UUID(C1),
                    created_by=uuid.UUID(U_ADMIN),
                    expires_at=expires,
                    time_zone="America/New_York",
                    service_code="97153",
                )
            )
        active = ("2027-03-12T15:00:00+00:00", "2027-03-12T16:00:00+00:00")
        stale = ("2027-03-12T18:00:00+00:00", "2027-03-12T19:00:00+00:00")
        for hid, (start, end), expires in (
            (hold_id, active, now + timedelta(minutes=5)),
            (expired_id, stale, now - timedelta(seconds=1)),
        ):
            await conn.execute(
                insert(HoldOccurrence).values(
                    id=uuid.uuid4(),
                    organization_id=uuid.UUID(ORG_A),
                    hold_id=hid,
                    occurrence_index=0,
                    therapist_id=uuid.UUID(T1),
                    client_id=uuid.UUID(C1),
                    start_time=_instant(start),
                    end_time=_instant(end),
                    expires_at=expires,
                    service_code="97153",
                )
            )
    r = await client.get(
        URL,
        params={
            "start_date": "2027-03-12",
            "end_date": "2027-03-13",
            "include_availability": "true",
            "therapist_ids": T1,
        },
        headers=clinic.headers("admin"),
    )
    friday, saturday = r.json()["data"]["availability"]
    assert friday["windows"] == [_slot("2027-03-12T14:00:00Z", "2027-03-12T23:30:00Z")]
    # The active hold blocks 15:00-16:00; the expired one blocks nothing.
    assert friday["free_slots"] == [
        _slot("2027-03-12T14:00:00Z", "2027-03-12T15:00:00Z"),
        _slot("2027-03-12T16:00:00Z", "2027-03-12T23:30:00Z"),
    ]
    assert (
        saturday["windows"]
        == saturday["free_slots"]
        == [_slot("2027-03-13T15:00:00Z", "2027-03-13T17:00:00Z")]
    )


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


TD, CD = uid(0xA2D0), uid(0xA3D0)


async def _dst_therapist(db: Database) -> None:
    """A New York therapist who works 01:00-04:00 on weekends, with sessions around the
    2027-03-14 spring-forward day (a 23-hour day: 05:00Z to 04:00Z)."""
    await import_more(
        db,
        {
            "therapists": [
                therapist(
                    TD,
                    "Dana Dst",
                    availability=[
                        {"weekday": d, "start": "01:00", "end": "04:00"}
                        for d in ("saturday", "sunday")
                    ],
                )
            ],
            "clients": [
                {"id": CD, "organization_id": ORG_A, "full_name": "Dee Dst", "therapist_ids": [TD]}
            ],
            "sessions": [
                session(uid(0xD1), TD, CD, "2027-03-14T04:30:00Z", "2027-03-14T05:00:00Z"),
                session(uid(0xD2), TD, CD, "2027-03-14T05:00:00Z", "2027-03-14T05:30:00Z"),
                session(uid(0xD3), TD, CD, "2027-03-15T03:30:00Z", "2027-03-15T04:00:00Z"),
                session(uid(0xD4), TD, CD, "2027-03-15T04:00:00Z", "2027-03-15T04:30:00Z"),
                session(uid(0xD5), TD, CD, "2027-03-14T06:30:00Z", "2027-03-14T07:30:00Z"),
            ],
        },
    )


async def test_spring_forward_day_has_23_hours(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await _dst_therapist(db)
    h = clinic.headers("admin")
    day = {"start_date": "2027-03-14", "end_date": "2027-03-14", "therapist_ids": TD}
    # New York 2027-03-14 runs from 05:00Z to 04:00Z the next day.
    r = await client.get(URL, params=day, headers=h)
    assert session_ids(r) == [uid(0xD2), uid(0xD5), uid(0xD3)]
    utc = await client.get(URL, params={**day, "time_zone": "UTC"}, headers=h)
    assert session_ids(utc) == [uid(0xD1), uid(0xD2), uid(0xD5)]
    assert utc.json()["request_parameters"]["time_zone"] == "UTC"
    # Los Angeles springs forward the same day: its 2027-03-14 runs from 08:00Z to 07:00Z.
    la = await client.get(URL, params={**day, "time_zone": "America/Los_Angeles"}, headers=h)
    assert session_ids(la) == [uid(0xD3), uid(0xD4)]


async def test_availability_windows_across_dst_changes(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await _dst_therapist(db)
    r = await client.get(
        URL,
        params={
            "start_date": "2027-03-13",
            "end_date": "2027-03-14",
            "therapist_ids": TD,
            "include_availability": "1",
        },
        headers=clinic.headers("admin"),
    )
    saturday, sunday = r.json()["data"]["availability"]
    # 01:00-04:00 EST on Saturday is 06:00-09:00Z; on the change day 01:00 EST → 04:00 EDT is 2 h.
    assert saturday["windows"] == [_slot("2027-03-13T06:00:00Z", "2027-03-13T09:00:00Z")]
    assert sunday["windows"] == [_slot("2027-03-14T06:00:00Z", "2027-03-14T08:00:00Z")]
    assert sunday["free_slots"] == [
        _slot("2027-03-14T06:00:00Z", "2027-03-14T06:30:00Z"),
        _slot("2027-03-14T07:30:00Z", "2027-03-14T08:00:00Z"),
    ]
    fall = await client.get(
        URL,
        params={
            "start_date": "2027-11-06",
            "end_date": "2027-11-07",
            "therapist_ids": TD,
            "include_availability": "1",
        },
        headers=clinic.headers("admin"),
    )
    saturday, sunday = fall.json()["data"]["availability"]
    # Fall back: Saturday 01:00-04:00 EDT; Sunday from 01:00 EDT (first) to 04:00 EST is 4 hours.
    assert saturday["windows"] == [_slot("2027-11-06T05:00:00Z", "2027-11-06T08:00:00Z")]
    assert sunday["windows"] == [_slot("2027-11-07T05:00:00Z", "2027-11-07T09:00:00Z")]
    # Weekday windows of T1 move by an hour in UTC across the spring change.
    t1 = await client.get(
        URL,
        params={
            "start_date": "2027-03-12",
            "end_date": "2027-03-15",
            "therapist_ids": T1,
            "include_availability": "1",
        },
        headers=clinic.headers("admin"),
    )
    by_day = {e["date"]: e["windows"] for e in t1.json()["data"]["availability"]}
    assert by_day == {
        "2027-03-12": [_slot("2027-03-12T14:00:00Z", "2027-03-12T22:00:00Z")],
        "2027-03-13": [],
        "2027-03-14": [],
        "2027-03-15": [_slot("2027-03-15T13:00:00Z", "2027-03-15T21:00:00Z")],
    }


def _conflict(kind: str, ids: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": kind, "session_ids": ids, **extra}


def _essentials(conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in conflicts:
        assert c["description"]
        assert c["suggested_resolution"]
        out.append({k: v for k, v in c.items() if k not in ("description", "suggested_resolution")})
    return out


ADMIN_CONFLICTS = [
    _conflict("outside_availability", [S[5]], therapist_id=T1, reason="time_off"),
    # 2027-03-17 19:00 EDT is after T1's 17:00 end.
    _conflict("outside_availability", [S[9]], therapist_id=T1, reason="outside_hours"),
    _conflict("authorization_expired", [S[3]], client_id=C2),  # A2 ended 2027-03-05
    _conflict("authorization_expired", [S[2]], client_id=C3),  # no authorization
    _conflict("authorization_expired", [S[6]], client_id=C2),
    _conflict("authorization_expired", [S[8]], client_id=C3),
    # S1 ends 16:00 at the clinic, S2 starts 16:05 by telehealth; the buffer is 15 minutes.
    _conflict("insufficient_break", [S[1], S[2]], therapist_id=T1),
]


async def test_conflicts_cover_the_whole_range_not_the_page(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(
        URL,
        params={**TWO_WEEKS, "include_conflicts": "true", "batch_size": 1},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert session_ids(r) == [S[1]]
    assert set(data) == {"sessions", "conflicts", "pagination", "performance"}
    assert _essentials(data["conflicts"]) == ADMIN_CONFLICTS
    # S7 at 2027-03-15 09:00 EDT (13:00Z) is inside T1's hours: no conflict names it.
    assert S[7] not in r.text.split('"conflicts"')[1]


async def test_authorization_exhausted(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    # A1 approves 8 units of 97155; two 90-minute sessions cost 6 units each.
    s10, s11 = uid(0xA610), uid(0xA611)
    await import_more(
        db,
        {
            "sessions": [
                session(
                    s10,
                    T1,
                    C1,
                    "2027-03-11T14:00:00Z",
                    "2027-03-11T15:30:00Z",
                    service_code="97155",
                    authorization_id=A1,
                    location_id=L1,
                    location_type="clinic",
                ),
                session(
                    s11,
                    T1,
                    C1,
                    "2027-03-12T14:00:00Z",
                    "2027-03-12T15:30:00Z",
                    service_code="97155",
                    authorization_id=A1,
                    location_id=L1,
                    location_type="clinic",
                ),
            ]
        },
    )
    r = await client.get(
        URL,
        params={"start_date": "2027-03-11", "end_date": "2027-03-12", "include_conflicts": "1"},
        headers=clinic.headers("scheduler"),
    )
    assert _essentials(r.json()["data"]["conflicts"]) == [
        _conflict(
            "authorization_exhausted",
            [s11],
            client_id=C1,
            authorization_id=A1,
            service_code="97155",
        )
    ]
    sessions = r.json()["data"]["sessions"]
    assert [s["authorization"] for s in sessions] == [
        {"id": A1, "end_date": "2027-06-30", "sessions_remaining": 0, "units_remaining": -4}
    ] * 2
    # The first session is within the approved units: a range holding only it has no conflict.
    first_day = await client.get(
        URL,
        params={"start_date": "2027-03-11", "end_date": "2027-03-11", "include_conflicts": "1"},
        headers=clinic.headers("scheduler"),
    )
    assert first_day.json()["data"]["conflicts"] == []
    # A therapist never gets authorization conflicts.
    mine = await client.get(
        URL,
        params={"start_date": "2027-03-11", "end_date": "2027-03-12", "include_conflicts": "1"},
        headers=clinic.headers("therapist"),
    )
    assert mine.json()["data"]["conflicts"] == []


async def test_therapist_gets_no_authorization_conflicts(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(
        URL, params={**TWO_WEEKS, "include_conflicts": "1"}, headers=clinic.headers("therapist")
    )
    assert _essentials(r.json()["data"]["conflicts"]) == [
        c for c in ADMIN_CONFLICTS if not c["type"].startswith("authorization_")
    ]
    assert "authorization" not in r.text


async def test_insufficient_break_rules(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """Different location_id, or different location_type when either has none; same place or a
    long enough gap is fine."""
    day = "2027-03-18"
    await import_more(
        db,
        {
            "sessions": [
                # same location, 5 minutes apart: fine
                session(uid(0xE1), T1, C1, f"{day}T14:00:00Z", f"{day}T15:00:00Z", location_id=L1),
                session(uid(0xE2), T1, C3, f"{day}T15:05:00Z", f"{day}T16:00:00Z", location_id=L1),
                # no location id, home vs school, 10 minutes apart: conflict
                session(
                    uid(0xE3), T1, C1, f"{day}T16:10:00Z", f"{day}T17:00:00Z", location_type="home"
                ),
                # 15 minutes after, at the clinic: enough (the buffer is inclusive)
                session(
                    uid(0xE4),
                    T1,
                    C3,
                    f"{day}T17:15:00Z",
                    f"{day}T18:00:00Z",
                    location_id=L2,
                    location_type="telehealth",
                ),
                # cancelled sessions never conflict
                session(
                    uid(0xE5),
                    T1,
                    C1,
                    f"{day}T18:00:00Z",
                    f"{day}T18:30:00Z",
                    "cancelled",
                    location_type="school",
                ),
            ]
        },
    )
    r = await client.get(
        URL,
        params={"start_date": day, "end_date": day, "include_conflicts": "1"},
        headers=clinic.headers("therapist"),
    )
    assert _essentials(r.json()["data"]["conflicts"]) == [
        _conflict("insufficient_break", [uid(0xE2), uid(0xE3)], therapist_id=T1)
    ]


async def test_a_day_of_cancelled_sessions_only_has_no_conflicts(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    """T2's 2027-03-09 (Chicago) holds only the cancelled S4: the page shows it, nothing conflicts,
    the day's slot is free, and the authorization checks started for the range end with nothing
    (the next request is served as usual)."""
    params = {
        "start_date": "2027-03-09",
        "end_date": "2027-03-09",
        "time_zone": "America/Chicago",
        "therapist_ids": T2,
        "include_availability": "true",
        "include_conflicts": "true",
    }
    for _ in range(2):
        r = await client.get(URL, params=params, headers=clinic.headers("admin"))
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert session_ids(r) == [S[4]]
        assert data["conflicts"] == []
        [entry] = data["availability"]
        assert entry["free_slots"] == entry["windows"] != []
