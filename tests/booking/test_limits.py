"""Hold limits and reschedule refusals over HTTP (codes not covered in test_hold.py)."""

from __future__ import annotations

import httpx

from tests.booking.conftest import book, hold, hold_body, monday, table_count
from tests.fixtures import C3, T2, Clinic, S
from therapy_scheduler.infra.db import Database


async def test_recurrence_over_200_instances(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1), recurrence={"rrule": "FREQ=DAILY;UNTIL=20400101"})
    r = await hold(client, booking, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "LIMIT_EXCEEDED"
    assert r.json()["details"] == {"limit": "occurrences", "max": 200}
    assert await table_count(db, "holds") == 0


async def test_only_scheduled_sessions_can_be_rescheduled(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    session = (await book(client, booking, hold_body(monday(1))))["session"]
    await client.post(
        "/sessions/cancel", json={"session_id": session["id"]}, headers=booking.headers("admin")
    )
    r = await hold(client, booking, hold_body(monday(1), session={"session_id": session["id"]}))
    assert (r.status_code, r.json()["code"]) == (409, "SESSION_NOT_RESCHEDULABLE")
    assert r.json()["details"] == {"session_id": session["id"], "status": "cancelled"}
    # A therapist may not move a caseload client's session with another therapist.
    r = await hold(
        client,
        booking,
        hold_body(
            monday(1),
            therapist=T2,
            client=C3,
            session={"session_id": S[2]},
        ),
        "therapist2",
    )
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), r.text
