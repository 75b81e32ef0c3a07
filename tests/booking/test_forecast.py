"""The forecast of a hold (`dry_run`, docs/BOOKING.md "Forecast") and the weekly caps of authorized
services, on SQLite and PostgreSQL: per-occurrence reasons, units left, the last covered occurrence,
the forecast in a refused hold's details, nothing written, the PHI read audited."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from tests.booking.conftest import (
    NY,
    UNITS_97153,
    UNITS_97155,
    book,
    hold,
    hold_body,
    hold_ok,
    monday,
    named,
    set_org_settings,
    table_count,
    time_off_day,
    today_ny,
    utc,
)
from tests.fixtures import A1, C1, C2, T2, Clinic
from tests.support import import_more
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent

SPENT_BY_FIXTURE = 20  # A1's 97153 units already used by the fixture's own sessions
EN_DASH = "\N{EN DASH}"
WRITTEN_TABLES = ("holds", "hold_occurrences", "sessions", "idempotency_records")


async def set_a1(
    db: Database, *, services: list[dict[str, Any]] | None = None, **changes: Any
) -> None:
    """Re-import C1's authorization A1 with its dates from now on, and the given changes."""
    record: dict[str, Any] = {
        "id": A1,
        "client_id": C1,
        "number": "A-1",
        "payer": "Blue Harbor",
        "start_date": (today_ny() - timedelta(days=30)).isoformat(),
        "end_date": (today_ny() + timedelta(days=400)).isoformat(),
        "status": "approved",
        "services": services
        or [
            {"service_code": "97153", "approved_units": UNITS_97153},
            {"service_code": "97155", "approved_units": UNITS_97155},
        ],
        **changes,
    }
    await import_more(db, {"authorizations": [record]})


def weekly(day: date, count: int, start: str = "13:00", end: str = "14:00", **extra: Any) -> Any:
    return hold_body(day, start, end, recurrence={"rrule": f"FREQ=WEEKLY;COUNT={count}"}, **extra)


async def dry_run(
    client: httpx.AsyncClient,
    clinic: Clinic,
    body: dict[str, Any],
    who: str = "scheduler",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    r = await client.post(
        "/sessions/hold",
        json={**body, "dry_run": True},
        headers={**clinic.headers(who), **(headers or {})},
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def written(db: Database) -> dict[str, int]:
    counts = {t: await table_count(db, t) for t in WRITTEN_TABLES}
    counts["audit_events"] = await table_count(db, "audit_events", "action <> 'phi.read'")
    return counts


async def test_occurrences_after_the_authorization_ends(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    first = monday(1)
    end = first + timedelta(weeks=7, days=6)  # the Sunday after the 8th Monday
    await set_a1(db, end_date=end.isoformat())
    body = weekly(first, 12)
    before = await written(db)
    forecast = await dry_run(client, booking, body)
    assert await written(db) == before

    assert forecast["success"] is True
    assert forecast["dry_run"] is True
    assert forecast["bookable"] is False
    assert (forecast["occurrence_count"], forecast["bookable_count"]) == (12, 8)
    assert forecast["summary"] == [
        f"Occurrences 9{EN_DASH}12 fall after the authorization ends on {end.isoformat()}"
    ]
    assert forecast["last_covered_occurrence"] == {
        "number": 8,
        "occurrence_index": 7,
        "start_time": utc(first + timedelta(weeks=7), "13:00"),
    }
    rows = forecast["occurrences"]
    remaining = UNITS_97153 - SPENT_BY_FIXTURE
    for n, row in enumerate(rows[:8]):
        assert row == {
            "number": n + 1,
            "occurrence_index": n,
            "start_time": utc(first + timedelta(weeks=n), "13:00"),
            "end_time": utc(first + timedelta(weeks=n), "14:00"),
            "bookable": True,
            "reasons": [],
            "authorization_id": A1,
            "units": 4,
            "units_remaining": remaining - 4 * (n + 1),
        }
    ninth = first + timedelta(weeks=8)
    assert rows[8] == {
        "number": 9,
        "occurrence_index": 8,
        "start_time": utc(ninth, "13:00"),
        "end_time": utc(ninth, "14:00"),
        "bookable": False,
        "reasons": [
            {
                "code": "AUTHORIZATION_MISSING",
                "message": f"The occurrence on {named(ninth, '13:00')} falls after the "
                f"authorization ends on {end.isoformat()}",
                "blocking": True,
                "service_code": "97153",
                "date": ninth.isoformat(),
                "reason": "after_end_date",
                "end_date": end.isoformat(),
            }
        ],
        "authorization_id": None,
        "units": 4,
        "units_remaining": None,
    }
    assert [r["bookable"] for r in rows[8:]] == [False] * 4
    assert forecast["authorizations"] == [
        {
            "authorization_id": A1,
            "start_date": (today_ny() - timedelta(days=30)).isoformat(),
            "end_date": end.isoformat(),
            "units_remaining_before": remaining,
            "units_remaining_after": remaining - 32,
            "weekly_cap_units": None,
            "weekly_cap_hours": None,
            "last_covered_occurrence": forecast["last_covered_occurrence"],
        }
    ]

    # The real hold is refused on the 9th occurrence, with the same forecast in its details.
    r = await hold(client, booking, body)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "AUTHORIZATION_MISSING"
    assert r.json()["error"] == (
        f"The occurrence on {named(ninth, '13:00')} falls after the authorization ends on "
        f"{end.isoformat()}"
    )
    details = r.json()["details"]
    assert details["occurrence_index"] == 8
    refused = details["forecast"]
    for name in ("bookable", "summary", "occurrences", "authorizations", "last_covered_occurrence"):
        assert refused[name] == forecast[name], name
    assert await written(db) == before


async def test_units_running_out_mid_series(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    # A1 holds 8 units of 97155: two one-hour sessions.
    forecast = await dry_run(
        client, booking, weekly(monday(1), 4, session={"service_code": "97155"})
    )
    rows = forecast["occurrences"]
    assert [r["bookable"] for r in rows] == [True, True, False, False]
    assert [r["units_remaining"] for r in rows] == [4, 0, None, None]
    assert [[x["reason"] for x in r["reasons"]] for r in rows] == [
        [],
        [],
        ["units_exhausted"],
        ["units_exhausted"],
    ]
    assert rows[2]["reasons"][0]["units_remaining"] == 0
    assert forecast["summary"] == [
        f"Occurrences 3{EN_DASH}4: not enough authorized units of service 97155 left"
    ]
    assert forecast["last_covered_occurrence"]["number"] == 2

    # Under `warn` the hold goes through, and the forecast says so: bookable, non-blocking reasons.
    await set_org_settings(db, authorization_policy="warn")
    forecast = await dry_run(
        client, booking, weekly(monday(1), 4, session={"service_code": "97155"})
    )
    assert forecast["bookable"] is True
    assert [[x["blocking"] for x in r["reasons"]] for r in forecast["occurrences"]] == [
        [],
        [],
        [False],
        [False],
    ]
    # Under `off` the units are not checked at all.
    await set_org_settings(db, authorization_policy="off")
    forecast = await dry_run(
        client, booking, weekly(monday(1), 4, session={"service_code": "97155"})
    )
    assert forecast["summary"] == []
    assert forecast["bookable"] is True


async def test_authorization_not_approved(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await set_a1(db, status="pending")
    forecast = await dry_run(client, booking, weekly(monday(1), 2))
    assert forecast["bookable"] is False
    assert forecast["summary"] == [
        f"Occurrences 1{EN_DASH}2 fall under an authorization that is pending, not approved"
    ]
    reason = forecast["occurrences"][0]["reasons"][0]
    assert (reason["code"], reason["reason"], reason["status"]) == (
        "AUTHORIZATION_MISSING",
        "not_approved",
        "pending",
    )
    assert forecast["last_covered_occurrence"] is None
    assert forecast["authorizations"] == []
    r = await hold(client, booking, weekly(monday(1), 2))
    assert r.status_code == 409, r.text
    assert r.json()["details"]["reason"] == "not_approved"
    assert r.json()["details"]["forecast"]["summary"] == forecast["summary"]


async def test_conflicts_with_existing_sessions_and_every_reason_of_an_occurrence(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    second = monday(2)
    # T1 is busy with C2 on the second Monday; C1's fourth Monday is held by C1 with T1.
    await book(client, booking, hold_body(second, "13:00", "14:00", client=C2))
    await hold_ok(client, booking, hold_body(monday(4), "13:30", "14:30"))
    before = await written(db)
    forecast = await dry_run(client, booking, weekly(monday(1), 4))
    assert await written(db) == before
    rows = forecast["occurrences"]
    assert [r["bookable"] for r in rows] == [True, False, True, False]
    assert [x["code"] for x in rows[1]["reasons"]] == ["THERAPIST_CONFLICT"]
    assert rows[1]["reasons"][0]["conflict"] == {
        "start_time": utc(second, "13:00"),
        "end_time": utc(second, "14:00"),
    }
    # The held slot is the therapist's and the client's: both conflicts are listed.
    assert [x["code"] for x in rows[3]["reasons"]] == [
        "THERAPIST_HOLD_CONFLICT",
        "CLIENT_HOLD_CONFLICT",
    ]
    assert forecast["summary"] == [
        "Occurrence 2 overlaps another session of the therapist",
        "Occurrence 4 overlaps time already held for the therapist",
        "Occurrence 4 overlaps time already held for the client",
    ]
    # A conflict is not an authorization refusal: no forecast in the details (alternatives are).
    r = await hold(client, booking, weekly(monday(1), 4))
    assert r.json()["code"] == "THERAPIST_CONFLICT"
    assert "forecast" not in r.json()["details"]


async def test_a_therapist_sees_reasons_but_no_authorization_figures(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    forecast = await dry_run(
        client, booking, weekly(monday(1), 3, session={"service_code": "97155"}), "therapist"
    )
    assert "authorizations" not in forecast
    assert set(forecast["occurrences"][2]) == {
        "number",
        "occurrence_index",
        "start_time",
        "end_time",
        "bookable",
        "reasons",
    }
    assert set(forecast["occurrences"][2]["reasons"][0]) == {
        "code",
        "message",
        "blocking",
        "service_code",
        "date",
        "reason",
    }
    # … and only for themselves.
    other = weekly(monday(1), 1, therapist=T2)
    r = await client.post(
        "/sessions/hold", json={**other, "dry_run": True}, headers=booking.headers("therapist")
    )
    assert r.status_code == 403, r.text


async def test_dry_run_writes_nothing_and_leaves_the_idempotency_key_free(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    app_and_client: tuple[Any, httpx.AsyncClient],
) -> None:
    app = app_and_client[0]
    key = {"Idempotency-Key": "series-42"}
    body = weekly(monday(1), 3)
    before = await written(db)
    forecast = await dry_run(client, booking, body, headers=key)
    assert forecast["bookable"] is True
    assert await written(db) == before
    # The PHI read is audited: one phi.read naming the client, nothing else.
    await app.state.audit_writer.flush()
    async with db.read() as conn:
        events = (
            await conn.execute(
                select(AuditEvent.action, AuditEvent.entity_type, AuditEvent.details).where(
                    AuditEvent.action == "phi.read"
                )
            )
        ).all()
    assert [(e.action, e.entity_type, e.details) for e in events] == [
        (
            "phi.read",
            "client",
            {"endpoint": "POST /sessions/hold (dry_run)", "session_count": 3, "client_count": 1},
        )
    ]
    # The key was not consumed: the real hold with it runs, and its retry replays it.
    headers = {**booking.headers("scheduler"), **key}
    first = await client.post("/sessions/hold", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post("/sessions/hold", json=body, headers=headers)
    assert again.json()["hold_key"] == first.json()["hold_key"]
    assert await table_count(db, "holds") == before["holds"] + 1


async def test_bad_input_names_the_field(client: httpx.AsyncClient, booking: Clinic) -> None:
    for value in ("yes", 1, None):
        r = await client.post(
            "/sessions/hold",
            json={**weekly(monday(1), 2), "dry_run": value},
            headers=booking.headers("scheduler"),
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "VALIDATION_ERROR"
        assert "dry_run" in r.text
    r = await client.post(
        "/sessions/hold",
        json={**hold_body(monday(1), "13:00", "12:00"), "dry_run": True},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 400, r.text
    assert r.json()["details"]["fields"][0]["field"] == "session"


# --- weekly caps ---------------------------------------------------------------------------------


def capped(**cap: Any) -> list[dict[str, Any]]:
    return [
        {"service_code": "97153", "approved_units": UNITS_97153, **cap},
        {"service_code": "97155", "approved_units": UNITS_97155},
    ]


async def test_a_second_session_in_a_week_exceeds_a_cap_in_units(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await set_a1(db, services=capped(weekly_cap_units=6))  # one hour (4 units) a week fits
    day = monday(1)
    await book(client, booking, hold_body(day, "09:00", "10:00"))
    tuesday = day + timedelta(days=1)
    r = await hold(client, booking, hold_body(tuesday, "13:00", "14:00"))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "WEEKLY_CAP_EXCEEDED"
    assert r.json()["error"] == (
        f"The occurrence on {named(tuesday, '13:00')} brings service 97153 to 8 units, over the "
        f"weekly cap of 6 units in the week of Monday {day.isoformat()}"
    )
    details = r.json()["details"]
    assert {k: v for k, v in details.items() if k != "forecast"} == {
        "occurrence_index": 0,
        "reason": "weekly_cap",
        "service_code": "97153",
        "week": day.isoformat(),
        "authorization_id": A1,
        "weekly_cap_units": 6,
        "week_units": 8,
    }
    assert details["forecast"]["summary"] == [
        f"Occurrence 1 goes over the weekly cap of 6 units of service 97153 in the week of Monday "
        f"{day.isoformat()}"
    ]
    # Half an hour (2 units) still fits that week; the next week starts afresh.
    await book(client, booking, hold_body(tuesday, "13:00", "13:30"))
    await hold_ok(client, booking, hold_body(day + timedelta(weeks=1), "13:00", "14:00"))

    # A series: the second session of each week is over the cap.
    await set_a1(db, services=capped(weekly_cap_units=4))
    body = hold_body(
        monday(3), "13:00", "14:00", recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO,TH;COUNT=4"}
    )
    forecast = await dry_run(client, booking, body)
    assert [r["bookable"] for r in forecast["occurrences"]] == [True, False, True, False]
    assert forecast["summary"] == [
        "Occurrences 2, 4 go over the weekly cap of 4 units of service 97153 in the weeks of "
        f"Monday {monday(3).isoformat()}, {monday(4).isoformat()}"
    ]
    assert forecast["authorizations"][0]["weekly_cap_units"] == 4
    # A therapist is told the week, not the payer's figure.
    mine = await dry_run(client, booking, body, "therapist")
    assert mine["summary"] == [
        "Occurrences 2, 4 go over the weekly cap of service 97153 in the weeks of "
        f"Monday {monday(3).isoformat()}, {monday(4).isoformat()}"
    ]


async def test_a_cap_in_hours(client: httpx.AsyncClient, booking: Clinic, db: Database) -> None:
    await set_a1(db, services=capped(weekly_cap_hours=1.5))
    day = monday(1)
    await book(client, booking, hold_body(day, "09:00", "10:00"))
    r = await hold(client, booking, hold_body(day + timedelta(days=2), "13:00", "14:00"))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "WEEKLY_CAP_EXCEEDED"
    assert "brings service 97153 to 2 hours, over the weekly cap of 1.5 hours" in r.json()["error"]
    assert r.json()["details"]["weekly_cap_hours"] == 1.5
    assert r.json()["details"]["forecast"]["summary"] == [
        "Occurrence 1 goes over the weekly cap of 1.5 hours of service 97153 in the week of "
        f"Monday {day.isoformat()}"
    ]
    # Half an hour fits exactly.
    await hold_ok(client, booking, hold_body(day + timedelta(days=2), "13:00", "13:30"))
    # Under `warn` the hold goes through with the warning.
    await set_org_settings(db, authorization_policy="warn")
    held = await hold_ok(client, booking, hold_body(day + timedelta(days=3), "13:00", "14:00"))
    assert [(w["code"], w["reason"]) for w in held["warnings"]] == [
        ("WEEKLY_CAP_EXCEEDED", "weekly_cap")
    ]


async def test_the_week_is_the_organizations_week_not_the_utc_week(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """Sunday 20:00 in New York is already Monday in UTC; it still belongs to the week before."""
    await set_org_settings(db, availability_policy="off")
    await set_a1(db, services=capped(weekly_cap_units=4))
    day = monday(1)
    sunday = day - timedelta(days=1)
    await book(client, booking, hold_body(sunday, "20:00", "21:00"))
    assert utc(sunday, "20:00").startswith(day.isoformat())  # Monday 01:00Z
    # Monday afternoon is another week in New York (the same UTC date as the Sunday session).
    forecast = await dry_run(client, booking, hold_body(day, "13:00", "14:00"))
    assert forecast["bookable"] is True
    # The Sunday before 20:00, in the same New York week as the Sunday session, is over the cap;
    # 19:00-20:00 New York is 00:00-01:00Z on Monday.
    forecast = await dry_run(client, booking, hold_body(sunday, "19:00", "20:00"))
    assert forecast["summary"] == [
        "Occurrence 1 goes over the weekly cap of 4 units of service 97153 in the week of Monday "
        f"{(day - timedelta(weeks=1)).isoformat()}"
    ]
    reason = forecast["occurrences"][0]["reasons"][0]
    assert reason["week"] == (day - timedelta(weeks=1)).isoformat()


def next_fall_back(tz: ZoneInfo, after: date) -> date:
    """The first day after `after` whose local clock goes back (November in New York)."""
    day = after
    while True:
        day += timedelta(days=1)
        noon_before = f"{day - timedelta(days=1)}T12:00"
        noon = f"{day}T12:00"
        offset_before = datetime.fromisoformat(noon_before).replace(tzinfo=tz).utcoffset()
        offset = datetime.fromisoformat(noon).replace(tzinfo=tz).utcoffset()
        if offset_before is not None and offset is not None and offset < offset_before:
            return day


async def test_weekly_series_across_the_november_clock_change(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    change = next_fall_back(NY, today_ny())  # a Sunday
    start = change - timedelta(days=13)  # the Monday two weeks before
    await set_a1(db, services=capped(weekly_cap_units=4))
    # The Sunday of the change, 23:30 (EST, 04:30Z Monday): counted in the week before it.
    await set_org_settings(db, availability_policy="off")
    await book(client, booking, hold_body(change, "23:00", "23:45"))
    await set_org_settings(db, availability_policy="block")
    forecast = await dry_run(client, booking, weekly(start, 4))
    rows = forecast["occurrences"]
    # Same wall-clock time, one more hour in UTC after the change.
    assert [r["start_time"][11:16] for r in rows] == ["17:00", "17:00", "18:00", "18:00"]
    assert [r["start_time"] for r in rows] == [
        utc(start + timedelta(weeks=n), "13:00") for n in range(4)
    ]
    # The Sunday-evening session shares its week with the 2nd Monday (Monday before the change):
    # that Monday goes over the cap of 4 units; the Monday after the change is a new week.
    assert [r["bookable"] for r in rows] == [True, False, True, True]
    assert rows[1]["reasons"][0]["week"] == (start + timedelta(weeks=1)).isoformat()


async def test_the_summary_says_availability_in_words(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """T1 works 09:00-17:00 on weekdays and has the Wednesday `time_off_day()` off."""
    off = time_off_day()
    body = hold_body(
        off - timedelta(days=2),
        "16:30",
        "17:30",
        recurrence={"rrule": "FREQ=DAILY;COUNT=4"},
    )
    forecast = await dry_run(client, booking, body)
    assert [r["bookable"] for r in forecast["occurrences"]] == [False] * 4
    assert forecast["summary"] == [
        f"Occurrences 1{EN_DASH}2, 4 fall outside the therapist's working hours",
        "Occurrence 3 falls during the therapist's time off",
    ]
    # Under `warn` the same sentences, and the series is bookable.
    await set_org_settings(db, availability_policy="warn")
    forecast = await dry_run(client, booking, body)
    assert forecast["bookable"] is True
    assert len(forecast["summary"]) == 2
