"""Session lifecycle after booking (docs/BOOKING.md): start, complete, no-show, reactivate, reschedule.

Over HTTP on SQLite and PostgreSQL: the state machine's allowed and refused transitions, units
accounting, roles and tenants, audit events, idempotency, and a real race of reactivate vs hold.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.booking.conftest import (
    UNITS_97153,
    book,
    hold,
    hold_body,
    hold_ok,
    monday,
    named,
    set_org_settings,
    table_count,
    utc,
)
from tests.booking.test_cancel import POLICIES
from tests.fixtures import A1, C2, SB, T1, T2, Clinic, S
from therapy_scheduler.booking.rules.states import TRANSITIONS
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent, Cancellation, HoldOccurrence, Session

SPENT_BY_FIXTURE = 20  # A1's 97153 units already spent by the fixture's own sessions


async def act(
    client: httpx.AsyncClient,
    clinic: Clinic,
    session_id: str,
    action: str,
    who: str = "scheduler",
    **headers: str,
) -> httpx.Response:
    return await client.post(
        f"/sessions/{session_id}/{action}", headers={**clinic.headers(who), **headers}
    )


async def booked(
    client: httpx.AsyncClient, clinic: Clinic, weeks: int = 1, start: str = "13:00"
) -> dict[str, Any]:
    end = f"{int(start[:2]) + 1:02d}{start[2:]}"
    confirmed = await book(client, clinic, hold_body(monday(weeks), start, end))
    session: dict[str, Any] = confirmed["session"]
    return session


async def status_of(db: Database, session_id: str) -> tuple[str, bool, int]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Session.status, Session.consumes_units, Session.units).where(
                    Session.id == uuid.UUID(session_id)
                )
            )
        ).one()
    return row.status, bool(row.consumes_units), int(row.units)


async def audit_actions(db: Database, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.entity_id == session_id)
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
        return [(r.action, r.details) for r in rows]


def test_transition_table_is_the_documented_one() -> None:
    assert TRANSITIONS == {
        ("scheduled", "start"): "in_progress",
        ("scheduled", "complete"): "completed",
        ("in_progress", "complete"): "completed",
        ("scheduled", "no_show"): "no_show",
        ("scheduled", "cancel"): "cancelled",
        ("in_progress", "cancel"): "cancelled",
        ("cancelled", "reactivate"): "scheduled",
        ("scheduled", "reschedule"): "scheduled",
    }


async def test_start_then_complete(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    session = await booked(client, booking)
    sid = session["id"]
    remaining = session["authorization"]["units_remaining"]
    assert remaining == UNITS_97153 - SPENT_BY_FIXTURE - 4

    r = await act(client, booking, sid, "start")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["success"], body["session_id"], body["action"]) == (True, sid, "start")
    assert (body["previous_status"], body["status"], body["changed"]) == (
        "scheduled",
        "in_progress",
        True,
    )
    assert body["session"]["status"] == "in_progress"
    assert body["session"]["authorization"]["units_remaining"] == remaining

    r = await act(client, booking, sid, "complete")
    assert r.status_code == 200, r.text
    assert (r.json()["previous_status"], r.json()["status"]) == ("in_progress", "completed")
    assert r.json()["session"]["authorization"]["units_remaining"] == remaining
    assert await status_of(db, sid) == ("completed", True, 4)
    events = await audit_actions(db, sid)
    assert [a for a, _ in events] == ["session.start", "session.complete"]
    assert events[1][1] == {
        "from": "in_progress",
        "to": "completed",
        "units_released": 0,
        "authorization_id": None,
        "warnings": [],
    }


async def test_complete_directly_from_scheduled(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    r = await act(client, booking, sid, "complete", "therapist")
    assert r.status_code == 200, r.text
    assert (r.json()["previous_status"], r.json()["status"]) == ("scheduled", "completed")
    # A therapist sees no authorization data.
    assert (
        "authorization" not in r.json()["session"] or r.json()["session"]["authorization"] is None
    )
    assert await status_of(db, sid) == ("completed", True, 4)


async def test_no_show_releases_units(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    session = await booked(client, booking)
    sid = session["id"]
    before = session["authorization"]["units_remaining"]
    r = await act(client, booking, sid, "no-show")
    assert r.status_code == 200, r.text
    assert (r.json()["previous_status"], r.json()["status"]) == ("scheduled", "no_show")
    assert r.json()["session"]["authorization"]["units_remaining"] == before + 4
    assert await status_of(db, sid) == ("no_show", False, 4)
    events = await audit_actions(db, sid)
    assert events[-1] == (
        "session.no_show",
        {
            "from": "scheduled",
            "to": "no_show",
            "units_released": 4,
            "authorization_id": None,
            "warnings": [],
        },
    )
    # The slot is free again for the client and therapist? No: a no-show keeps its place in the
    # calendar (it happened, or rather did not); only the units return.
    r = await hold(client, booking, hold_body(monday(1)))
    assert r.json()["code"] == "THERAPIST_CONFLICT"


@pytest.mark.parametrize(
    ("prepare", "action", "expected_from", "expected_to"),
    [
        ("complete", "start", "completed", "in_progress"),
        ("complete", "no-show", "completed", "no_show"),
        ("start", "no-show", "in_progress", "no_show"),
        ("complete", "reactivate", "completed", "scheduled"),
        ("no-show", "complete", "no_show", "completed"),
        ("no-show", "start", "no_show", "in_progress"),
        (None, "reactivate", None, None),  # already scheduled: a no-op, see below
    ],
)
async def test_invalid_transitions(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    prepare: str | None,
    action: str,
    expected_from: str | None,
    expected_to: str | None,
) -> None:
    sid = (await booked(client, booking))["id"]
    if prepare:
        assert (await act(client, booking, sid, prepare)).status_code == 200
    before = await status_of(db, sid)
    events = len(await audit_actions(db, sid))
    r = await act(client, booking, sid, action)
    if expected_from is None:
        assert r.status_code == 200
        assert r.json()["changed"] is False
    else:
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "INVALID_TRANSITION"
        details = r.json()["details"]
        assert (details["from"], details["to"], details["session_id"]) == (
            expected_from,
            expected_to,
            sid,
        )
    assert await status_of(db, sid) == before
    assert len(await audit_actions(db, sid)) == events


async def test_same_status_again_is_a_no_op(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    assert (await act(client, booking, sid, "start")).status_code == 200
    r = await act(client, booking, sid, "start")
    assert r.status_code == 200
    assert (r.json()["previous_status"], r.json()["status"], r.json()["changed"]) == (
        "in_progress",
        "in_progress",
        False,
    )
    assert [a for a, _ in await audit_actions(db, sid)] == ["session.start"]


async def test_roles_and_tenants(client: httpx.AsyncClient, booking: Clinic, db: Database) -> None:
    sid = (await booked(client, booking))["id"]  # T1 with C1
    # T2 cannot see T1's session with C1 (C1 is not on T2's caseload) → 404; T1's session with C3
    # (on T2's caseload) is visible but not T2's → 403; another organization → 404.
    r = await act(client, booking, sid, "start", "therapist2")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await act(client, booking, S[2], "start", "therapist2")
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    r = await act(client, booking, sid, "start", "admin_b")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await act(client, booking, SB, "start", "admin")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await act(client, booking, str(uuid.uuid4()), "complete")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await act(client, booking, "not-a-uuid", "start")
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")
    r = await client.post(f"/sessions/{sid}/start")
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED")
    r = await client.get(f"/sessions/{sid}/start", headers=booking.headers("admin"))
    assert r.status_code == 405
    assert await status_of(db, sid) == ("scheduled", True, 4)
    # The owner may; so may an admin.
    assert (await act(client, booking, sid, "start", "therapist")).status_code == 200
    assert (await act(client, booking, sid, "complete", "admin")).status_code == 200


async def test_idempotency_key_replays(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    first = await act(client, booking, sid, "no-show", **{"Idempotency-Key": "ns-1"})
    again = await act(client, booking, sid, "no-show", **{"Idempotency-Key": "ns-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replay") == "true"
    assert again.json() == first.json()
    assert again.json()["changed"] is True
    # The same key on another session's endpoint call is another request body → 422.
    other = (await booked(client, booking, weeks=2))["id"]
    r = await act(client, booking, other, "no-show", **{"Idempotency-Key": "ns-1"})
    assert (r.status_code, r.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert await status_of(db, other) == ("scheduled", True, 4)


# --- reactivate --------------------------------------------------------------------------------


async def cancel(
    client: httpx.AsyncClient, clinic: Clinic, session_id: str, **body: Any
) -> httpx.Response:
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": session_id, **body},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    return r


async def test_reactivate_books_the_units_again(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    session = await booked(client, booking)
    sid = session["id"]
    remaining = session["authorization"]["units_remaining"]
    await cancel(client, booking, sid, reason="client_illness")
    assert await status_of(db, sid) == ("cancelled", False, 4)
    r = await act(client, booking, sid, "reactivate")
    assert r.status_code == 200, r.text
    assert (r.json()["previous_status"], r.json()["status"], r.json()["changed"]) == (
        "cancelled",
        "scheduled",
        True,
    )
    assert r.json()["session"]["authorization"]["units_remaining"] == remaining
    assert r.json()["warnings"] == []
    assert await status_of(db, sid) == ("scheduled", True, 4)
    # History is kept: the cancellation record stays, and both events are in the audit log.
    assert await table_count(db, "cancellations", f"session_id = '{_db_id(db, sid)}'") == 1
    events = await audit_actions(db, sid)
    assert [a for a, _ in events][-2:] == ["session.cancel", "session.reactivate"]
    assert events[-1][1]["authorization_id"] == A1
    # It can be cancelled again afterwards.
    await cancel(client, booking, sid)


def _db_id(db: Database, value: str) -> str:
    """How a UUID column is stored: hex without dashes on SQLite, the canonical form on PostgreSQL."""
    return value if db.dialect == "postgresql" else uuid.UUID(value).hex


async def test_late_cancelled_session_keeps_units_and_reactivates_without_double_count(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await set_org_settings(db, **POLICIES)
    session = await booked(client, booking)
    sid = session["id"]
    remaining = session["authorization"]["units_remaining"]
    await cancel(client, booking, sid, reason="client_illness", cancellation_policy="strict")
    assert await status_of(db, sid) == ("cancelled", True, 4)  # late, units kept
    r = await act(client, booking, sid, "reactivate")
    assert r.status_code == 200, r.text
    assert r.json()["session"]["authorization"]["units_remaining"] == remaining
    assert await status_of(db, sid) == ("scheduled", True, 4)


async def test_reactivate_refused_when_the_slot_was_taken(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    await cancel(client, booking, sid)
    await book(client, booking, hold_body(monday(1), "13:30", "14:30", client=C2))
    r = await act(client, booking, sid, "reactivate")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "THERAPIST_CONFLICT"
    # No request zone here: the session is named in its therapist's zone.
    assert r.json()["error"] == (
        f"The occurrence on {named(monday(1), '13:00')} overlaps another session of the therapist"
    )
    details = r.json()["details"]
    assert details["conflict"] == {
        "start_time": utc(monday(1), "13:30"),
        "end_time": utc(monday(1), "14:30"),
    }
    assert details["requested"] == {
        "start_time": utc(monday(1), "13:00"),
        "end_time": utc(monday(1), "14:00"),
    }
    # Alternatives come from the same engine as booking errors: in hours, free, closest first.
    assert details["alternatives"] == [
        {"start_time": utc(monday(1), "11:30"), "end_time": utc(monday(1), "12:30")},
        {"start_time": utc(monday(1), "12:30"), "end_time": utc(monday(1), "13:30")},
        {"start_time": utc(monday(1), "14:30"), "end_time": utc(monday(1), "15:30")},
    ]
    assert await status_of(db, sid) == ("cancelled", False, 4)


async def test_reactivate_refused_by_an_active_hold_and_by_the_client(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking, start="14:00"))["id"]
    await cancel(client, booking, sid)
    held = await hold_ok(client, booking, hold_body(monday(1), "14:00", "15:00"))
    r = await act(client, booking, sid, "reactivate")
    assert (r.status_code, r.json()["code"]) == (409, "THERAPIST_HOLD_CONFLICT")
    released = await client.delete(
        f"/sessions/hold/{held['hold_key']}", headers=booking.headers("scheduler")
    )
    assert released.status_code == 200
    # The client (C1) is now booked with T2 at that time: a client conflict.
    await book(client, booking, hold_body(monday(1), "14:00", "15:00", therapist=T2))
    r = await act(client, booking, sid, "reactivate")
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT")
    assert await status_of(db, sid) == ("cancelled", False, 4)


async def test_reactivate_refused_without_units(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    await cancel(client, booking, sid)
    # Spend A1's 97153 units down to 3 (a one-hour session needs 4).
    async with db.write() as conn:
        from therapy_scheduler.models import AuthorizationService

        await conn.execute(
            update(AuthorizationService)
            .where(
                AuthorizationService.authorization_id == uuid.UUID(A1),
                AuthorizationService.service_code == "97153",
            )
            .values(approved_units=SPENT_BY_FIXTURE + 3)
        )
    r = await act(client, booking, sid, "reactivate")
    assert (r.status_code, r.json()["code"]) == (409, "AUTHORIZATION_EXHAUSTED")
    assert (r.json()["details"]["units_required"], r.json()["details"]["units_remaining"]) == (4, 3)
    assert await status_of(db, sid) == ("cancelled", False, 4)
    # Under policy "warn" it goes through with a warning.
    await set_org_settings(db, authorization_policy="warn")
    r = await act(client, booking, sid, "reactivate")
    assert r.status_code == 200, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["AUTHORIZATION_EXHAUSTED"]


async def test_reactivate_refused_for_a_past_session(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    await cancel(client, booking, sid)
    past = datetime.now(UTC) - timedelta(days=2)
    async with db.write() as conn:
        await conn.execute(
            update(Session)
            .where(Session.id == uuid.UUID(sid))
            .values(start_time=past, end_time=past + timedelta(hours=1))
        )
    r = await act(client, booking, sid, "reactivate")
    assert (r.status_code, r.json()["code"]) == (409, "SESSION_IN_PAST")
    assert await status_of(db, sid) == ("cancelled", False, 4)


async def test_reactivate_races_a_hold_exactly_one_wins(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """Real concurrent requests on one slot: a reactivation and a hold for another client of the
    same therapist. Whatever the interleaving, exactly one succeeds."""
    for weeks in range(1, 5):
        sid = (await booked(client, booking, weeks=weeks))["id"]
        await cancel(client, booking, sid)
        reactivated, held = await asyncio.gather(
            act(client, booking, sid, "reactivate"),
            hold(client, booking, hold_body(monday(weeks), "13:00", "14:00", client=C2)),
        )
        outcomes = sorted([reactivated.status_code, held.status_code])
        assert outcomes == [200, 409], (reactivated.text, held.text)
        loser = reactivated if reactivated.status_code == 409 else held
        assert loser.json()["code"] in {"THERAPIST_CONFLICT", "THERAPIST_HOLD_CONFLICT"}
        if reactivated.status_code == 200:
            assert await status_of(db, sid) == ("scheduled", True, 4)
        else:
            assert await status_of(db, sid) == ("cancelled", False, 4)
        # Never both: exactly one live occupant of T1's slot.
        start = datetime.fromisoformat(utc(monday(weeks), "13:00").replace("Z", "+00:00"))
        async with db.read() as conn:
            sessions = (
                await conn.execute(
                    select(Session.id).where(
                        Session.therapist_id == uuid.UUID(T1),
                        Session.status != "cancelled",
                        Session.start_time == start,
                    )
                )
            ).all()
            holds = (
                await conn.execute(
                    select(HoldOccurrence.id).where(
                        HoldOccurrence.therapist_id == uuid.UUID(T1),
                        HoldOccurrence.active.is_(True),
                        HoldOccurrence.start_time == start,
                    )
                )
            ).all()
        assert len(sessions) + len(holds) == 1
        assert len(sessions) == (1 if reactivated.status_code == 200 else 0)


async def test_reactivate_of_the_fixture_cancelled_session(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """S4 (T2 with C2, cancelled, no cancellation record) reactivates inside T2's hours."""
    r = await act(client, booking, S[4], "reactivate", "admin")
    assert r.status_code == 200, r.text
    assert await status_of(db, S[4]) == ("scheduled", True, 4)
    async with db.read() as conn:
        assert (await conn.execute(select(Cancellation))).first() is None


# --- reschedule ---------------------------------------------------------------------------------


async def reschedule(
    client: httpx.AsyncClient, clinic: Clinic, session_id: str, who: str = "scheduler", **body: Any
) -> httpx.Response:
    return await client.post(
        f"/sessions/{session_id}/reschedule",
        json={"time_zone": "America/New_York", **body},
        headers=clinic.headers(who),
    )


async def test_reschedule_moves_the_same_session(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    session = await booked(client, booking)
    sid = session["id"]
    scheduled = await table_count(db, "sessions", "status = 'scheduled'")
    day = monday(1) + timedelta(days=1)
    r = await reschedule(client, booking, sid, start_time=f"{day.isoformat()}T10:00")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["session_id"] == sid
    assert body["previous"] == {
        "start_time": utc(monday(1), "13:00"),
        "end_time": utc(monday(1), "14:00"),
    }
    assert (body["session"]["id"], body["session"]["start_time"], body["session"]["end_time"]) == (
        sid,
        utc(day, "10:00"),
        utc(day, "11:00"),
    )
    assert (
        body["session"]["authorization"]["units_remaining"]
        == (session["authorization"]["units_remaining"])
    )
    assert await table_count(db, "sessions", "status = 'scheduled'") == scheduled
    assert await table_count(db, "hold_occurrences", "active") == 0
    # The old slot is free again.
    await book(client, booking, hold_body(monday(1), "13:00", "14:00", client=C2))
    actions = [a for a, _ in await audit_actions(db, sid)]
    assert actions == []  # the move is recorded on the hold (hold.create/hold.confirm, below)
    async with db.read() as conn:
        confirm_events = (
            (
                await conn.execute(
                    select(AuditEvent.details).where(AuditEvent.action == "hold.confirm")
                )
            )
            .scalars()
            .all()
        )
    assert any(e["rescheduled"] and e["session_ids"] == [sid] for e in confirm_events)


async def test_reschedule_refused_changes_nothing(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    await book(client, booking, hold_body(monday(2), "13:00", "14:00", client=C2))
    r = await reschedule(client, booking, sid, start_time=f"{monday(2).isoformat()}T13:30")
    assert (r.status_code, r.json()["code"]) == (409, "THERAPIST_CONFLICT")
    assert r.json()["details"]["alternatives"]
    async with db.read() as conn:
        row = (
            await conn.execute(select(Session.start_time).where(Session.id == uuid.UUID(sid)))
        ).scalar_one()
    moved = row if row.tzinfo is not None else row.replace(tzinfo=UTC)
    assert moved.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == utc(monday(1), "13:00")
    assert await table_count(db, "hold_occurrences", "active") == 0
    # A cancelled session cannot be moved; a therapist may not move another's session.
    await cancel(client, booking, sid)
    r = await reschedule(client, booking, sid, start_time=f"{monday(3).isoformat()}T10:00")
    assert (r.status_code, r.json()["code"]) == (409, "SESSION_NOT_RESCHEDULABLE")
    r = await reschedule(
        client, booking, S[2], "therapist2", start_time=f"{monday(3).isoformat()}T10:00"
    )
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    r = await reschedule(
        client, booking, S[5], "therapist2", start_time=f"{monday(3).isoformat()}T10:00"
    )
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await reschedule(client, booking, SB, start_time=f"{monday(3).isoformat()}T10:00")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await reschedule(client, booking, S[5], start_time="2027-03-14T02:30")
    assert (r.status_code, r.json()["code"]) == (400, "NONEXISTENT_LOCAL_TIME")
    r = await client.post(
        f"/sessions/{S[5]}/reschedule",
        json={"start_time": "2027-01-01T10:00"},
        headers=booking.headers("scheduler"),
    )
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")


async def test_reschedule_is_idempotent(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    sid = (await booked(client, booking))["id"]
    body = {"time_zone": "America/New_York", "start_time": f"{monday(1).isoformat()}T15:00"}
    headers = {**booking.headers("scheduler"), "Idempotency-Key": "move-1"}
    first = await client.post(f"/sessions/{sid}/reschedule", json=body, headers=headers)
    again = await client.post(f"/sessions/{sid}/reschedule", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers.get("Idempotent-Replay") == "true"
    assert again.json() == first.json()
    assert first.json()["session"]["start_time"] == utc(monday(1), "15:00")
    assert await table_count(db, "holds", "status = 'confirmed'") == 2


async def test_purge_keeps_the_hold_of_a_confirmed_series(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """The confirmed hold of a series carries its recurrence (the calendar feeds' RRULE): it is kept
    when closed holds are purged; a single booking's confirmed hold goes after 24 hours."""
    from therapy_scheduler.booking.purge import purge_once

    await book(client, booking, hold_body(monday(1)))
    await book(
        client,
        booking,
        hold_body(monday(2), recurrence={"rrule": "FREQ=WEEKLY;COUNT=2"}),
    )
    result = await purge_once(db, datetime.now(UTC) + timedelta(hours=25))
    assert result.deleted_holds == 1
    assert await table_count(db, "holds") == 1
    assert await table_count(db, "holds", "series_id IS NOT NULL") == 1


async def test_openapi_declares_the_new_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for action in ("start", "complete", "no-show", "reactivate"):
        op = spec["paths"][f"/sessions/{{session_id}}/{action}"]["post"]
        assert {"400", "401", "403", "404", "409", "422"} <= set(op["responses"])
        assert "INVALID_TRANSITION" in op["responses"]["409"]["description"]
        assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    reactivate = spec["paths"]["/sessions/{session_id}/reactivate"]["post"]["responses"]
    for code in ("SESSION_IN_PAST", "THERAPIST_HOLD_CONFLICT", "AUTHORIZATION_EXHAUSTED"):
        assert code in reactivate["409"]["description"]
    move = spec["paths"]["/sessions/{session_id}/reschedule"]["post"]["responses"]
    assert "THERAPIST_CONFLICT" in move["409"]["description"]
    suggest = spec["paths"]["/suggest-alternative-times"]["post"]["responses"]
    assert {"400", "401", "403", "404"} <= set(suggest)
    assert "LIMIT_EXCEEDED" in suggest["400"]["description"]
    for path in ("/admin/therapists", "/admin/users", "/admin/import"):
        op = spec["paths"][path]["post"]
        assert "IDEMPOTENCY_IN_PROGRESS" in op["responses"]["409"]["description"]
        assert "422" in op["responses"]
        assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
