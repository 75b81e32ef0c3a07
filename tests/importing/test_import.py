"""The JSON import (docs/IMPORT.md): errors name the JSON path, one transaction, upsert by id, no overlapping
sessions (in the file or against the database)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from tests.conftest import count_rows
from tests.fixtures import (
    C1,
    C2,
    C3,
    ORG_A,
    ORG_B,
    T1,
    T2,
    TB,
    U_ADMIN,
    Clinic,
    S,
    clinic_document,
)
from tests.support import client_record, import_more, session, therapist, uid
from therapy_scheduler.importing.service import ImportFailed, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Organization, Session

MAY_3 = ("2027-05-03T14:00:00Z", "2027-05-03T15:00:00Z")
TABLES = (
    "organizations",
    "locations",
    "therapists",
    "availability_windows",
    "time_off",
    "clients",
    "caseloads",
    "users",
    "authorizations",
    "authorization_services",
    "sessions",
)


async def _counts(db: Database) -> dict[str, int]:
    return {t: await count_rows(db, t) for t in TABLES}


def _problem(doc: dict[str, Any]) -> str:
    with pytest.raises(ImportFailed) as caught:
        parse_document(doc)
    assert caught.value.code == "IMPORT_INVALID"
    return caught.value.message


def _therapists(n: int) -> list[dict[str, Any]]:
    return [therapist(uid(0xA2E0 + i), f"Therapist {i}") for i in range(n)]


def test_shape_errors_name_the_json_path() -> None:
    four = _therapists(4)
    four[3]["time_zone"] = "Mars/Base"
    assert (
        _problem({"therapists": four}) == 'therapists[3].time_zone: unknown time zone "Mars/Base"'
    )
    bad_window = _therapists(1)
    bad_window[0]["availability"] = [
        {"weekday": "monday", "start": "09:00", "end": "17:00"},
        {"weekday": "funday", "start": "09:00", "end": "17:00"},
    ]
    assert _problem({"therapists": bad_window}) == (
        'therapists[0].availability[1].weekday: unknown weekday "funday"'
    )
    org = {"id": ORG_A, "name": "A", "time_zone": "UTC", "settings": {"hold_secs": 30}}
    assert _problem({"organizations": [org]}) == (
        "organizations[0].settings.hold_secs: Extra inputs are not permitted"
    )
    org["settings"] = {"availability_policy": "sometimes"}
    assert _problem({"organizations": [org]}).startswith(
        "organizations[0].settings.availability_policy: Input should be 'block', 'warn' or 'off'"
    )
    assert _problem(
        {"sessions": [session(S[1], T1, C1, "2027-03-08T14:00", "2027-03-08T15:00")]}
    ) == ("sessions[0]: session times need a UTC offset (e.g. 2026-03-09T14:00:00Z)")
    assert _problem({"teams": []}) == (
        "teams: unknown key (expected one of organizations, locations, therapists, clients, users, "
        "authorizations, sessions)"
    )
    assert _problem([]) == (  # type: ignore[arg-type]
        "document: must be a JSON object"
    )


async def test_reference_errors_name_the_json_path(db: Database, clinic: Clinic) -> None:
    before = await _counts(db)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"therapists": [therapist(uid(0xA2F0), "X", organization_id=uid(0xDEAD))]},
            f"therapists[0].organization_id: unknown organization {uid(0xDEAD)}",
        ),
        (
            {
                "sessions": [
                    session(
                        uid(0xF0), T1, uid(0xBAD), "2027-05-03T14:00:00Z", "2027-05-03T15:00:00Z"
                    )
                ]
            },
            f"sessions[0].client_id: unknown client {uid(0xBAD)}",
        ),
        (  # a client of another organization is as unknown as a missing one
            {
                "sessions": [
                    session(
                        uid(0xF0), T1, uid(0xB301), "2027-05-03T14:00:00Z", "2027-05-03T15:00:00Z"
                    )
                ]
            },
            f"sessions[0].client_id: unknown client {uid(0xB301)}",
        ),
        (
            {"clients": [client_record(uid(0xA3F0), "Y", therapist_ids=[T1, TB])]},
            f"clients[0].therapist_ids[1]: unknown therapist {TB}",
        ),
        (
            {
                "users": [
                    {
                        "id": uid(0xA5F0),
                        "organization_id": ORG_A,
                        "email": "admin@alpha.example",
                        "full_name": "Someone Else",
                        "role": "admin",
                    }
                ]
            },
            "users[0].email: e-mail already used by another user",
        ),
        (
            {
                "therapists": [
                    therapist(
                        uid(0xA2F1),
                        "Gap",
                        time_off=[{"start": "2027-03-14T02:30", "end": "2027-03-14T05:00"}],
                    )
                ]
            },
            "therapists[0].time_off[0]: 2027-03-14T02:30:00 does not exist in America/New_York "
            "(daylight-saving gap)",
        ),
    ]
    for doc, message in cases:
        with pytest.raises(ImportFailed) as caught:
            await import_more(db, doc)
        assert caught.value.message == message
    assert await _counts(db) == before


async def test_one_transaction_an_invalid_record_imports_nothing(
    db: Database, clinic: Clinic
) -> None:
    before = await _counts(db)
    doc = {
        "therapists": _therapists(3),
        "clients": [client_record(uid(0xA3E0), "New Client", therapist_ids=[uid(0xA2E0)])],
        "sessions": [
            session(
                uid(0xE0), uid(0xA2E0), uid(0xA3E0), "2027-05-03T14:00:00Z", "2027-05-03T15:00:00Z"
            ),
            # T1 already has S1 at this time: the whole file is refused after the people were written.
            session(uid(0xE1), T1, C1, "2027-03-08T15:00:00Z", "2027-03-08T15:30:00Z"),
        ],
    }
    with pytest.raises(ImportFailed) as caught:
        await import_more(db, doc)
    assert caught.value.message == (
        f"sessions[1]: overlaps existing session {S[1]} of the same therapist"
    )
    assert await _counts(db) == before


async def test_overlapping_sessions_in_the_file_are_rejected(db: Database, clinic: Clinic) -> None:
    day = "2027-05-04"
    cases = [
        (  # same therapist, different clients
            [
                session(uid(0xE0), T1, C1, f"{day}T14:00:00Z", f"{day}T15:00:00Z"),
                session(uid(0xE1), T1, C3, f"{day}T14:30:00Z", f"{day}T15:30:00Z"),
            ],
            "sessions[0]: overlaps sessions[1] of the same therapist",
        ),
        (  # same client, different therapists
            [
                session(uid(0xE0), T1, C3, f"{day}T14:00:00Z", f"{day}T15:00:00Z"),
                session(uid(0xE1), T2, C3, f"{day}T13:00:00Z", f"{day}T14:01:00Z"),
            ],
            "sessions[0]: overlaps sessions[1] of the same client",
        ),
        (  # against the database, for the client
            [session(uid(0xE0), T2, C1, "2027-03-08T15:59:00Z", "2027-03-08T16:30:00Z")],
            f"sessions[0]: overlaps existing session {S[1]} of the same client",
        ),
    ]
    for sessions, message in cases:
        with pytest.raises(ImportFailed) as caught:
            await import_more(db, {"sessions": sessions})
        assert caught.value.message == message
    # Back to back is not an overlap; a cancelled session blocks nothing; re-importing an existing
    # session with the same times does not overlap itself.
    fine = [
        session(uid(0xE0), T1, C1, f"{day}T14:00:00Z", f"{day}T15:00:00Z"),
        session(uid(0xE1), T1, C3, f"{day}T15:00:00Z", f"{day}T16:00:00Z"),
        session(uid(0xE2), T1, C2, f"{day}T14:30:00Z", f"{day}T15:30:00Z", "cancelled"),
        session(S[4], T2, C2, "2027-03-09T15:00:00Z", "2027-03-09T16:00:00Z", "cancelled"),
        session(uid(0xE3), T2, C2, "2027-03-09T15:00:00Z", "2027-03-09T16:00:00Z"),
    ]
    counts = await import_more(db, {"sessions": fine})
    assert counts["sessions"] == 5
    assert await count_rows(db, "sessions") == 10 + 4


async def test_reimport_is_an_upsert(
    db: Database, clinic: Clinic, client: httpx.AsyncClient
) -> None:
    before = await _counts(db)
    again = clinic_document()
    counts = await import_more(db, again)
    assert counts == {
        "organizations": 2,
        "locations": 4,
        "therapists": 5,
        "clients": 5,
        "users": 6,
        "authorizations": 3,
        "sessions": 10,
    }
    assert await _counts(db) == before
    changed = copy.deepcopy(again)
    changed["therapists"][0]["full_name"] = "Tara Quinn-Smith"
    changed["therapists"][0]["availability"] = [
        {"weekday": "monday", "start": "10:00", "end": "12:00"}
    ]
    changed["sessions"][0]["status"] = "completed"
    changed["clients"][2]["therapist_ids"] = [T2]
    await import_more(db, {k: changed[k] for k in ("therapists", "clients", "sessions")})
    after = await _counts(db)
    assert after["therapists"] == before["therapists"]
    assert after["availability_windows"] == before["availability_windows"] - 5 + 1
    assert after["caseloads"] == before["caseloads"] - 1
    r = await client.get(
        "/get-sessions-optimized",
        params={"therapist_id": T1, "status": "completed"},
        headers=clinic.headers("admin"),
    )
    assert [s["id"] for s in r.json()["data"]["sessions"]] == [S[1]]
    assert r.json()["data"]["sessions"][0]["therapist"]["full_name"] == "Tara Quinn-Smith"
    # C3 left T1's caseload: T1 no longer sees S8 (T2 with C3).
    mine = await client.get("/get-sessions-optimized", headers=clinic.headers("therapist"))
    assert S[8] not in [s["id"] for s in mine.json()["data"]["sessions"]]


async def test_imported_units_follow_the_service_unit_length(
    db: Database, clinic: Clinic, client: httpx.AsyncClient
) -> None:
    auth = uid(0xA4F0)
    await import_more(
        db,
        {
            "authorizations": [
                {
                    "id": auth,
                    "client_id": C3,
                    "number": "A-3",
                    "payer": "Keystone",
                    "start_date": "2027-01-01",
                    "end_date": "2027-12-31",
                    "status": "approved",
                    "services": [
                        {"service_code": "97156", "approved_units": 10, "unit_minutes": 30}
                    ],
                }
            ],
            "sessions": [
                session(
                    uid(0xE9),
                    T1,
                    C3,
                    "2027-05-05T14:00:00Z",
                    "2027-05-05T14:45:00Z",
                    service_code="97156",
                    authorization_id=auth,
                )
            ],
        },
    )
    r = await client.get(
        "/get-sessions-optimized", params={"client_id": C3}, headers=clinic.headers("admin")
    )
    top = r.json()["data"]["sessions"][0]
    # 45 minutes in 30-minute units is 2 units: 8 left, 4 more such sessions.
    assert top["authorization"] == {
        "id": auth,
        "end_date": "2027-12-31",
        "sessions_remaining": 4,
        "units_remaining": 8,
    }


async def test_unknown_stored_settings_keys_do_not_break_requests(
    db: Database, clinic: Clinic, client: httpx.AsyncClient
) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(Organization)
            .where(Organization.id == uuid.UUID(ORG_A))
            .values(settings={"buffer_minutes": 15, "added_by_a_newer_version": {"x": 1}})
        )
    r = await client.get(
        "/get-schedule-data-batch",
        params={"start_date": "2027-03-08", "end_date": "2027-03-08", "include_conflicts": "1"},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 200, r.text
    # The known key still applies: S1/S2 are 5 minutes apart at different places.
    assert [c["type"] for c in r.json()["data"]["conflicts"]] == [
        "authorization_expired",
        "authorization_expired",
        "insufficient_break",
    ]
    other = await client.get("/get-sessions-optimized", headers=clinic.headers("admin_b"))
    assert other.status_code == 200
    assert U_ADMIN not in other.text
    assert ORG_B not in other.text


def test_sessions_longer_than_eight_hours_are_refused() -> None:
    """Product rule (docs/DECISIONS.md): a session lasts at most 8 hours; exactly 8 is fine."""
    long = session(S[1], T1, C1, "2027-03-08T09:00:00Z", "2027-03-08T17:00:01Z")
    assert _problem({"sessions": [long]}) == "sessions[0]: a session lasts at most 8 hours"
    eight = session(S[1], T1, C1, "2027-03-08T09:00:00Z", "2027-03-08T17:00:00Z")
    assert len(parse_document({"sessions": [eight]}).sessions) == 1


async def test_the_database_refuses_sessions_longer_than_eight_hours(
    db: Database, clinic: Clinic
) -> None:
    """On PostgreSQL a CHECK constraint (migration 0005) backs the rule for every write path."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite cannot add a CHECK to an existing table; the importer enforces it")
    with pytest.raises(IntegrityError, match="ck_sessions_max_length"):
        async with db.write() as conn:
            await conn.execute(
                update(Session)
                .where(Session.id == uuid.UUID(S[1]))
                .values(end_time=text("start_time + interval '8 hours 1 second'"))
            )


async def test_weekly_caps_in_the_json_document(db: Database, clinic: Clinic) -> None:
    """`weekly_cap_units` or `weekly_cap_hours` per service (docs/IMPORT.md); both, or a cap that is
    not positive, is a problem naming the path, and nothing is imported."""

    def authorization(**cap: Any) -> dict[str, Any]:
        return {
            "authorizations": [
                {
                    "id": uid(0xA4F1),
                    "client_id": C3,
                    "number": "A-9",
                    "payer": "Keystone",
                    "start_date": "2027-01-01",
                    "end_date": "2027-12-31",
                    "status": "approved",
                    "services": [{"service_code": "97153", "approved_units": 100, **cap}],
                }
            ]
        }

    before = await _counts(db)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"weekly_cap_units": 8, "weekly_cap_hours": 2},
            "authorizations[0].services[0].weekly_cap_hours: give weekly_cap_units "
            "or weekly_cap_hours, not both",
        ),
        (
            {"weekly_cap_units": 0},
            "authorizations[0].services[0].weekly_cap_units: Input should be greater than 0",
        ),
        (
            {"weekly_cap_hours": 0.01},
            "authorizations[0].services[0].weekly_cap_hours: must be a whole number "
            "of minutes (e.g. 7.5 or 7.25 hours)",
        ),
    ]
    for cap, message in cases:
        with pytest.raises(ImportFailed) as caught:
            await import_more(db, authorization(**cap))
        assert caught.value.message == message
    assert await _counts(db) == before
    await import_more(db, authorization(weekly_cap_hours=10))
    async with db.read() as conn:
        minutes = (
            await conn.execute(text("SELECT weekly_cap_minutes FROM authorization_services"))
        ).scalars()
    assert sorted(m for m in minutes if m is not None) == [600]
