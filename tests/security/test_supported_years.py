"""Dates and times far from today are refused with a 400, never a 500 (found by the full schema fuzz).

Every date or wall-clock time a client sends must fall on a day in 1900-2199 (`kit.time.
check_supported`): the body and query fields, RRULE UNTIL and the instances a rule expands to. Before
the bound, year 9999 plus a zone offset or a duration overflowed Python's datetime in the hold,
suggest, time-off and audit endpoints, and authorizations accepted years 1 and 9999."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import count_rows
from tests.fixtures import C1, T1, Clinic
from therapy_scheduler.infra.db import Database

RANGE = "between 1900-01-01 and 2199-12-31"
FAR = (
    "9999-12-31T23:00:00",  # local in an east-of-UTC zone... and New York: UTC is in year 10000
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+05:00",  # UTC is in year 0
    "1899-12-31T12:00:00Z",
    "2200-01-01T00:00:00Z",
)


def _hold(start: str, **extra: Any) -> dict[str, Any]:
    return {
        "session": {"therapist_id": T1, "client_id": C1, "start_time": start},
        "duration_minutes": 60,
        "time_zone": "Asia/Tokyo",
        **extra,
    }


def _cases() -> list[tuple[str, str, dict[str, Any] | None, str]]:
    cases: list[tuple[str, str, dict[str, Any] | None, str]] = []
    for when in FAR:
        cases += [
            ("POST", "/sessions/hold", _hold(when), RANGE),
            (
                "POST",
                "/suggest-alternative-times",
                {
                    "therapist_id": T1,
                    "client_id": C1,
                    "start_time": when,
                    "duration_minutes": 60,
                    "time_zone": "Asia/Tokyo",
                },
                RANGE,
            ),
            ("GET", f"/admin/audit-events?since={when.replace('+', '%2B')}", None, RANGE),
        ]
        local = when[:19]
        if not local.startswith(("19", "20", "21")):  # 1899/2200 are covered by the others
            cases.append(
                ("POST", f"/admin/therapists/{T1}/time-off", {"start": local, "end": local}, RANGE)
            )
    for day in ("9999-12-31", "0001-01-01", "2200-01-01"):
        cases.append(
            (
                "POST",
                "/admin/authorizations",
                {
                    "client_id": C1,
                    "payer": "Payer",
                    "number": "AUTH-FAR",
                    "start_date": "2026-01-01" if day > "2026" else day,
                    "end_date": day if day > "2026" else "2026-12-31",
                    "status": "approved",
                },
                RANGE,
            )
        )
    cases += [
        (
            "POST",
            "/sessions/hold",
            _hold(
                "2030-01-07T10:00:00", recurrence={"rrule": "FREQ=WEEKLY;UNTIL=99991231T235959Z"}
            ),
            "UNTIL must be " + RANGE,
        ),
        (
            "POST",
            "/sessions/hold",
            _hold(
                "2030-01-07T10:00:00", recurrence={"rrule": "FREQ=MONTHLY;INTERVAL=366;COUNT=200"}
            ),
            "the instances must end by 2199-12-31",
        ),
    ]
    return cases


async def test_far_dates_and_times_are_refused_not_a_500(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    tables = ("holds", "time_off", "authorizations")
    before = {t: await count_rows(db, t) for t in tables}
    for method, url, body, message in _cases():
        r = await client.request(method, url, json=body, headers=clinic.headers("admin"))
        assert r.status_code == 400, (method, url, body, r.text)
        assert r.json()["code"] == "VALIDATION_ERROR", r.text
        assert message in r.text, (url, body, r.text)
    assert {t: await count_rows(db, t) for t in tables} == before


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_the_edges_of_the_supported_years_do_not_overflow(
    client: httpx.AsyncClient, clinic: Clinic, zone: str
) -> None:
    """The last and first supported days, in the zones furthest from UTC: answers, not 500s."""
    admin = clinic.headers("admin")
    for start in ("2199-12-31T23:30:00", "1900-01-01T00:00:00"):
        body = {**_hold(start), "time_zone": zone}
        r = await client.post("/sessions/hold", json=body, headers=admin)
        # In the past (1900) or outside T1's hours (2199): refused for what it is, not overflowed.
        assert r.status_code in (400, 409), r.text
        assert r.json()["code"] != "INTERNAL_ERROR"
    r = await client.post(
        f"/admin/therapists/{T1}/time-off",
        json={"start": "2199-12-31T00:00:00", "end": "2199-12-31T23:59:00"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/admin/authorizations",
        json={
            "client_id": C1,
            "payer": "Payer",
            "number": f"AUTH-EDGE-{zone}",
            "start_date": "1900-01-01",
            "end_date": "2199-12-31",
            "status": "approved",
            "services": [{"service_code": "97153", "approved_units": 10}],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = await client.get(
        "/get-schedule-data-batch",
        params={"therapist_ids": T1, "start_date": "2199-12-25", "end_date": "2199-12-31"},
        headers=admin,
    )
    assert r.status_code == 200, r.text


async def test_documented_lengths_hold_before_whitespace_is_trimmed(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """Found by the full schema fuzz: names are trimmed, and the trim used to come before the length
    check, so a 202-character name that began with a tab was accepted although OpenAPI documents
    `maxLength: 200`. The documented limit now holds for the value as sent."""
    admin = clinic.headers("admin")
    before = await count_rows(db, "clients")
    for name in ("\t\x0f" + "*" * 200, " " + "a" * 200):
        r = await client.post("/admin/clients", json={"full_name": name}, headers=admin)
        assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR"), r.text
        assert r.json()["details"]["fields"] == [
            {"field": "full_name", "message": "at most 200 characters", "type": "value_error"}
        ], r.text
    r = await client.get("/admin/clients", params={"q": " " + "x" * 100}, headers=admin)
    assert r.status_code == 400, r.text
    assert await count_rows(db, "clients") == before
    # Within the limit, surrounding whitespace is still trimmed.
    r = await client.post("/admin/clients", json={"full_name": "  Robin Reed  "}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["full_name"] == "Robin Reed"
