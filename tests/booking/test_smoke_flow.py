from __future__ import annotations

import httpx

from tests.booking.conftest import book, hold_body, monday, utc
from tests.fixtures import C1, T1, Clinic


async def test_hold_confirm_cancel(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    confirmed = await book(client, booking, hold_body(day))
    session = confirmed["session"]
    assert session["start_time"] == utc(day, "13:00")
    assert session["therapist_id"] == T1
    assert session["client_id"] == C1
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": session["id"], "reason": "client_illness"},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["cancelled_session_ids"] == [session["id"]]
