"""POST /sessions/confirm (docs/BOOKING.md) and hold expiry/purge, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from tests.booking.conftest import (
    book,
    confirm_ok,
    hold,
    hold_body,
    hold_ok,
    monday,
    table_count,
    utc,
)
from tests.fixtures import A1, C1, C3, L1, T1, Clinic
from therapy_scheduler.booking.purge import purge_once
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold, HoldOccurrence, Session


def confirm_body(held: dict[str, Any], **extra: Any) -> dict[str, Any]:
    session = {
        "start_time": held["occurrences"][0]["start_time"],
        "end_time": held["occurrences"][0]["end_time"],
        **extra.pop("session", {}),
    }
    return {"hold_key": held["hold_key"], "session": session, **extra}


async def post_confirm(
    client: httpx.AsyncClient, clinic: Clinic, body: dict[str, Any], who: str = "scheduler"
) -> httpx.Response:
    return await client.post("/sessions/confirm", json=body, headers=clinic.headers(who))


async def test_confirm_creates_the_session(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    held = await hold_ok(client, booking, hold_body(day, session={"location_id": L1}))
    r = await post_confirm(
        client,
        booking,
        confirm_body(
            held, session={"notes": "Bring the token board"}, time_zone="America/New_York"
        ),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    session = body["session"]
    assert body["occurrences"] == [session]
    assert body["replayed"] is False
    assert body["series_id"] is None
    created_at = session.pop("created_at")
    assert session.pop("updated_at") == created_at
    session_id = session.pop("id")
    assert session == {
        "therapist_id": T1,
        "client_id": C1,
        "start_time": utc(day, "13:00"),
        "end_time": utc(day, "14:00"),
        "duration_minutes": 60,
        "status": "scheduled",
        "location_type": "clinic",
        "location_id": L1,
        "service_code": "97153",
        "series_id": None,
        "therapist": {"id": T1, "full_name": "Tara Quinn"},
        "client": {"id": C1, "full_name": "Casey Cole"},
        # 100 approved - 20 spent by the fixture's sessions - 4 for this one
        "authorization": {
            "id": A1,
            "end_date": session["authorization"]["end_date"],
            "sessions_remaining": 19,
            "units_remaining": 76,
        },
        "notes": "Bring the token board",
    }
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Session.units, Session.consumes_units, Session.authorization_id).where(
                    Session.id == uuid.UUID(session_id)
                )
            )
        ).one()
        occurrence = (
            await conn.execute(select(HoldOccurrence.active, HoldOccurrence.session_id))
        ).one()
        status = (await conn.execute(select(Hold.status, Hold.confirmed_by))).one()
    assert (row.units, row.consumes_units, str(row.authorization_id)) == (4, True, A1)
    assert (occurrence.active, str(occurrence.session_id)) == (False, session_id)
    assert status.status == "confirmed"
    assert await table_count(db, "audit_events", "action = 'hold.confirm'") == 1


async def test_therapist_confirms_without_authorization_data(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)), "therapist")
    confirmed = await confirm_ok(client, booking, held, "therapist")
    assert "authorization" not in confirmed["session"]


async def test_recurring_confirm_shares_a_series(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    held = await hold_ok(
        client, booking, hold_body(day, recurrence={"rrule": "FREQ=WEEKLY;COUNT=3"})
    )
    r = await post_confirm(client, booking, confirm_body(held, occurrences=held["occurrences"]))
    assert r.status_code == 200, r.text
    sessions = r.json()["occurrences"]
    assert [s["start_time"] for s in sessions] == [
        utc(day + timedelta(weeks=w), "13:00") for w in range(3)
    ]
    series = {s["series_id"] for s in sessions}
    assert len(series) == 1
    assert None not in series
    assert r.json()["series_id"] == sessions[0]["series_id"]
    assert await table_count(db, "sessions", "status = 'scheduled'") == 3 + 7  # + fixture's
    assert await table_count(db, "hold_occurrences", "active") == 0


async def test_hold_not_found(client: httpx.AsyncClient, booking: Clinic) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)))
    for who in ("therapist2", "admin_b"):
        r = await post_confirm(client, booking, confirm_body(held), who)
        assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND"), who
    r = await post_confirm(client, booking, {**confirm_body(held), "hold_key": "x" * 32})
    assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND")


async def test_mismatch(client: httpx.AsyncClient, booking: Clinic, db: Database) -> None:
    day = monday(1)
    held = await hold_ok(
        client, booking, hold_body(day, recurrence={"rrule": "FREQ=WEEKLY;COUNT=2"})
    )
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            confirm_body(held, session={"end_time": utc(day, "14:30")}),
            {
                "field": "session",
                "occurrence_index": 0,
                "held": {"start_time": utc(day, "13:00"), "end_time": utc(day, "14:00")},
                "given": {"start_time": utc(day, "13:00"), "end_time": utc(day, "14:30")},
            },
        ),
        (
            confirm_body(held, occurrences=held["occurrences"][:1]),
            {"field": "occurrences", "held": 2, "given": 1},
        ),
        (
            confirm_body(
                held,
                occurrences=[
                    held["occurrences"][0],
                    {"start_time": utc(day + timedelta(weeks=1), "13:15")},
                ],
            ),
            {
                "field": "occurrences[1]",
                "occurrence_index": 1,
                "held": {
                    "start_time": utc(day + timedelta(weeks=1), "13:00"),
                    "end_time": utc(day + timedelta(weeks=1), "14:00"),
                },
                "given": {
                    "start_time": utc(day + timedelta(weeks=1), "13:15"),
                    "end_time": utc(day + timedelta(weeks=1), "14:15"),
                },
            },
        ),
        (
            confirm_body(held, session={"service_code": "97155"}),
            {"field": "session.service_code", "held": "97153", "given": "97155"},
        ),
    ]
    for body, details in cases:
        r = await post_confirm(client, booking, body)
        assert (r.status_code, r.json()["code"]) == (409, "HOLD_MISMATCH"), r.text
        assert r.json()["details"] == details
    assert await table_count(db, "holds", "status = 'active'") == 1
    # Local times in the hold's zone are understood too.
    r = await post_confirm(
        client,
        booking,
        confirm_body(
            held, session={"start_time": f"{day}T13:00:00", "end_time": f"{day}T14:00:00"}
        ),
    )
    assert r.status_code == 200, r.text


async def test_offsets(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)  # winter in New York: UTC-5, i.e. -300 minutes east
    held = await hold_ok(client, booking, hold_body(day))
    r = await post_confirm(client, booking, confirm_body(held, start_time_offset_minutes=-240))
    assert (r.status_code, r.json()["code"]) == (400, "OFFSET_MISMATCH")
    assert r.json()["details"] == {
        "field": "start_time_offset_minutes",
        "given": -240,
        "expected": -300,
        "time_zone": "America/New_York",
    }
    r = await post_confirm(
        client,
        booking,
        confirm_body(
            held,
            time_zone="Europe/London",
            start_time_offset_minutes=0,
            end_time_offset_minutes=0,
        ),
    )
    assert r.status_code == 200, r.text


async def test_replay_and_other_users(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)))
    first = await post_confirm(client, booking, confirm_body(held))
    again = await post_confirm(client, booking, confirm_body(held))
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["occurrences"] == first.json()["occurrences"]
    r = await post_confirm(client, booking, confirm_body(held), "admin")
    assert (r.status_code, r.json()["code"]) == (409, "HOLD_ALREADY_CONFIRMED")
    assert await table_count(db, "audit_events", "action = 'hold.confirm'") == 1


async def test_racing_confirms_create_once(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    held = await hold_ok(
        client, booking, hold_body(monday(1), recurrence={"rrule": "FREQ=DAILY;COUNT=3"})
    )
    before = await table_count(db, "sessions")
    results = await asyncio.gather(
        *(post_confirm(client, booking, confirm_body(held)) for _ in range(8))
    )
    assert [r.status_code for r in results] == [200] * 8
    assert sum(1 for r in results if not r.json()["replayed"]) == 1
    assert len({tuple(s["id"] for s in r.json()["occurrences"]) for r in results}) == 1
    assert await table_count(db, "sessions") == before + 3


async def test_released_hold(client: httpx.AsyncClient, booking: Clinic) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)))
    await client.delete(f"/sessions/hold/{held['hold_key']}", headers=booking.headers("admin"))
    r = await post_confirm(client, booking, confirm_body(held))
    assert (r.status_code, r.json()["code"]) == (410, "HOLD_RELEASED")


async def expire(db: Database, hold_key: str) -> datetime:
    """Move a hold's expiry into the past (as if its time had run out)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with db.write() as conn:
        hold_id = (
            await conn.execute(select(Hold.id).where(Hold.hold_key == hold_key))
        ).scalar_one()
        await conn.execute(update(Hold).where(Hold.id == hold_id).values(expires_at=past))
        await conn.execute(
            update(HoldOccurrence).where(HoldOccurrence.hold_id == hold_id).values(expires_at=past)
        )
    return past


async def test_expired_hold_stops_blocking_and_gives_410_then_404(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    held = await hold_ok(client, booking, hold_body(day, hold_seconds=30))
    past = await expire(db, held["hold_key"])
    # Nothing has purged it, yet it no longer blocks the therapist, the client, or the units.
    taken = await hold_ok(client, booking, hold_body(day, client=C1))
    shown = await client.get(
        f"/sessions/hold/{held['hold_key']}", headers=booking.headers("scheduler")
    )
    assert shown.json()["status"] == "expired"
    r = await post_confirm(client, booking, confirm_body(held))
    assert (r.status_code, r.json()["code"]) == (410, "HOLD_EXPIRED")
    assert r.json()["details"] == {"expires_at": past.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

    result = await purge_once(db, datetime.now(UTC))
    assert (result.expired, result.deleted_holds) == (1, 0)
    r = await post_confirm(client, booking, confirm_body(held))
    assert (r.status_code, r.json()["code"]) == (410, "HOLD_EXPIRED")
    result = await purge_once(db, datetime.now(UTC) + timedelta(hours=24, seconds=2))
    # The second hold expired too by then (it is marked first, deleted on a later pass).
    assert result.expired == 1
    r = await post_confirm(client, booking, confirm_body(held))
    assert (r.status_code, r.json()["code"]) == (404, "HOLD_NOT_FOUND")
    assert await table_count(db, "holds") == 1
    assert await table_count(db, "holds", "status = 'expired'") == 1
    assert taken["occurrences"] == held["occurrences"]


async def test_hold_then_confirm_moves_units(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """Units are reserved by the hold, spent by the session, and back after a release/cancel."""

    async def remaining() -> int:
        r = await client.post(
            "/get-schedule-data-batch",
            json={
                "start_date": monday(1).isoformat(),
                "end_date": monday(1).isoformat(),
                "client_ids": [C1],
            },
            headers=booking.headers("scheduler"),
        )
        sessions = r.json()["data"]["sessions"]
        return int(sessions[0]["authorization"]["units_remaining"]) if sessions else -1

    day = monday(1)
    held = await hold_ok(client, booking, hold_body(day, "09:00", "10:00"))
    confirmed = await confirm_ok(client, booking, held)
    assert await remaining() == 76
    second = await hold_ok(client, booking, hold_body(day, "10:00", "12:00"))
    assert await remaining() == 68
    await client.delete(f"/sessions/hold/{second['hold_key']}", headers=booking.headers("admin"))
    assert await remaining() == 76
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": confirmed["session"]["id"]},
        headers=booking.headers("admin"),
    )
    assert r.status_code == 200
    assert await table_count(db, "sessions", "consumes_units AND status = 'cancelled'") == 0


async def test_reschedule_moves_the_session(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    day = monday(1)
    original = (await book(client, booking, hold_body(day)))["session"]
    # Overlapping its own old slot is fine: the session being moved does not conflict with itself.
    held = await hold_ok(
        client, booking, hold_body(day, "13:30", "14:30", session={"session_id": original["id"]})
    )
    assert held["session_id"] == original["id"]
    moved = await confirm_ok(client, booking, held)
    assert moved["session"]["id"] == original["id"]
    assert moved["session"]["start_time"] == utc(day, "13:30")
    assert await table_count(db, "sessions", "status = 'scheduled'") == 1 + 7
    r = await hold(
        client, booking, hold_body(day, client=C3, session={"session_id": original["id"]})
    )
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")
