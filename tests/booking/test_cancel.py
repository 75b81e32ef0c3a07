"""POST /sessions/cancel (docs/BOOKING.md) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.booking.conftest import book, hold_body, monday, set_org_settings, table_count
from tests.fixtures import SB, U_SCHED, Clinic, S
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent, Cancellation, Session

POLICIES = {
    "default_cancellation_policy": "standard",
    "cancellation_policies": [
        {"name": "standard", "notice_hours": 24, "release_units_on_late_cancel": True},
        {
            "name": "strict",
            "notice_hours": 24 * 30,
            "release_units_on_late_cancel": False,
            "exempt_attributions": ["staff"],
        },
    ],
}


@pytest.fixture
async def policies(booking: Clinic, db: Database) -> Clinic:
    await set_org_settings(db, **POLICIES)
    return booking


async def cancel(
    client: httpx.AsyncClient, clinic: Clinic, who: str = "scheduler", **body: Any
) -> httpx.Response:
    return await client.post("/sessions/cancel", json=body, headers=clinic.headers(who))


async def booked(client: httpx.AsyncClient, clinic: Clinic, weeks: int = 1) -> str:
    confirmed = await book(client, clinic, hold_body(monday(weeks)))
    return str(confirmed["session"]["id"])


async def test_cancel_records_reason_and_releases_units(
    client: httpx.AsyncClient, policies: Clinic, db: Database
) -> None:
    session_id = await booked(client, policies)
    r = await cancel(
        client, policies, session_id=session_id, reason="client_illness", notes="Parent called"
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "session_id": session_id,
        "status": "cancelled",
        "late_cancellation": False,
        "cancelled_session_ids": [session_id],
        "already_cancelled": False,
        "cancellation_policy": "standard",
        "scope": "occurrence",
        "cancellations": [
            {"session_id": session_id, "late_cancellation": False, "units_released": 4}
        ],
        "warnings": [],
        "waitlist_offer_id": None,
    }
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Session.status, Session.consumes_units, Session.notes).where(
                    Session.id == uuid.UUID(session_id)
                )
            )
        ).one()
        record = (await conn.execute(select(Cancellation))).one()
        event = (
            await conn.execute(
                select(AuditEvent.details).where(AuditEvent.action == "session.cancel")
            )
        ).scalar_one()
    assert tuple(row) == ("cancelled", False, None)  # clinical notes untouched
    assert (record.reason, record.notes, record.policy) == (
        "client_illness",
        "Parent called",
        "standard",
    )
    assert (record.late_cancellation, record.units_released) == (False, 4)
    assert str(record.cancelled_by) == U_SCHED
    assert event == {
        "reason": "client_illness",
        "policy": "standard",
        "scope": "occurrence",
        "late_cancellation": False,
        "units_released": 4,
        "previous_status": "scheduled",
    }


async def test_late_cancellation_under_a_strict_policy_keeps_units(
    client: httpx.AsyncClient, policies: Clinic, db: Database
) -> None:
    session_id = await booked(client, policies)
    r = await cancel(
        client,
        policies,
        "therapist",
        session_id=session_id,
        reason="client_schedule_conflict",
        cancellation_policy="strict",
    )
    assert r.status_code == 200, r.text
    assert r.json()["late_cancellation"] is True
    # A therapist does not see authorization figures.
    assert r.json()["cancellations"] == [{"session_id": session_id, "late_cancellation": True}]
    assert await table_count(db, "sessions", "status = 'cancelled' AND consumes_units") == 1


async def test_staff_reasons_are_never_late_under_strict(
    client: httpx.AsyncClient, policies: Clinic
) -> None:
    session_id = await booked(client, policies)
    r = await cancel(
        client,
        policies,
        session_id=session_id,
        reason="therapist_illness",
        cancellation_policy="strict",
    )
    assert r.json()["late_cancellation"] is False
    assert r.json()["cancellations"][0]["units_released"] == 4


async def test_in_progress_session_is_late(
    client: httpx.AsyncClient, policies: Clinic, db: Database
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=10)
    async with db.write() as conn:
        await conn.execute(
            update(Session)
            .where(Session.id == uuid.UUID(S[7]))
            .values(status="in_progress", start_time=started, end_time=started + timedelta(hours=1))
        )
    r = await cancel(client, policies, session_id=S[7], reason="client_illness")
    assert r.status_code == 200, r.text
    assert r.json()["late_cancellation"] is True
    # The standard policy still gives the units back on a late cancellation.
    assert r.json()["cancellations"][0]["units_released"] == 4


async def test_already_cancelled_changes_nothing(
    client: httpx.AsyncClient, policies: Clinic, db: Database
) -> None:
    session_id = await booked(client, policies)
    await cancel(client, policies, session_id=session_id, cancellation_policy="strict")
    r = await cancel(client, policies, session_id=session_id, reason="weather")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "session_id": session_id,
        "status": "cancelled",
        "late_cancellation": True,
        "cancelled_session_ids": [],
        "already_cancelled": True,
        "cancellation_policy": "strict",
        "waitlist_offer_id": None,
    }
    assert await table_count(db, "cancellations") == 1
    r = await cancel(client, policies, session_id=S[4])  # imported as cancelled
    assert r.json()["already_cancelled"] is True


@pytest.mark.parametrize(("key", "status"), [(3, "completed"), (8, "no_show")])
async def test_finished_sessions_are_not_cancellable(
    client: httpx.AsyncClient, policies: Clinic, db: Database, key: int, status: str
) -> None:
    r = await cancel(client, policies, "admin", session_id=S[key])
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "SESSION_NOT_CANCELLABLE"
    assert r.json()["details"] == {"session_id": S[key], "status": status}
    assert await table_count(db, "cancellations") == 0


async def test_ownership_is_rechecked(
    client: httpx.AsyncClient, policies: Clinic, db: Database
) -> None:
    # Another organization's session, and an unknown one: 404.
    for session_id in (SB, str(uuid.UUID(int=0xDEAD))):
        r = await cancel(client, policies, "admin", session_id=session_id)
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    # T2 cannot see T1's session with C1 (C1 is not on T2's caseload): 404.
    r = await cancel(client, policies, "therapist2", session_id=S[1])
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    # T2 can see T1's session with C3 (on T2's caseload) but does not own it: 403.
    r = await cancel(client, policies, "therapist2", session_id=S[2])
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    assert await table_count(db, "cancellations") == 0
    r = await cancel(client, policies, "therapist", session_id=S[2])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "bored"}, "reason"),
        ({"notes": "x" * 2001}, "notes"),
        ({"scope": "everything"}, "scope"),
        ({"cancellation_policy": "lenient"}, "cancellation_policy"),
        ({"session_id": "not-a-uuid"}, "session_id"),
    ],
)
async def test_invalid_input(
    client: httpx.AsyncClient, policies: Clinic, db: Database, body: dict[str, Any], field: str
) -> None:
    r = await cancel(client, policies, **{"session_id": S[1], **body})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert [f["field"] for f in r.json()["details"]["fields"]] == [field]
    assert await table_count(db, "cancellations") == 0


async def test_series_scopes(client: httpx.AsyncClient, policies: Clinic) -> None:
    confirmed = await book(
        client, policies, hold_body(monday(1), recurrence={"rrule": "FREQ=WEEKLY;COUNT=4"})
    )
    ids = [s["id"] for s in confirmed["occurrences"]]
    r = await cancel(client, policies, session_id=ids[1], scope="following")
    assert r.json()["cancelled_session_ids"] == ids[1:]
    r = await cancel(client, policies, session_id=ids[0], scope="series")
    assert r.json()["cancelled_session_ids"] == [ids[0]]
    r = await cancel(client, policies, session_id=ids[2], scope="series")
    assert r.json()["already_cancelled"] is True
