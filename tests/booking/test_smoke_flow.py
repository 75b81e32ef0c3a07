from __future__ import annotations

import httpx

from tests.booking.conftest import book, hold_body, hold_ok, monday, utc
from tests.fixtures import C1, C2, T1, Clinic


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


async def test_the_audit_logs_client_filter_finds_the_clients_bookings(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    """A hold, its confirmation, the session's cancellation and a released hold are events of the
    client they book (docs/AUDIT_AND_FEEDS.md): the audit log's client filter finds them."""
    confirmed = await book(client, booking, hold_body(monday(1)))
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": confirmed["session"]["id"], "reason": "client_illness"},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    held = await hold_ok(client, booking, hold_body(monday(2)))
    r = await client.delete(
        f"/sessions/hold/{held['hold_key']}", headers=booking.headers("scheduler")
    )
    assert r.status_code == 200, r.text

    async def actions(client_id: str) -> list[tuple[str, list[str]]]:
        r = await client.get(
            "/admin/audit-events", params={"client_id": client_id}, headers=booking.headers("admin")
        )
        assert r.status_code == 200, r.text
        return [(e["action"], e["client_ids"]) for e in r.json()["data"]["events"]]

    assert await actions(C1) == [
        ("hold.release", [C1]),
        ("hold.create", [C1]),
        ("session.cancel", [C1]),
        ("hold.confirm", [C1]),
        ("hold.create", [C1]),
    ]
    assert await actions(C2) == []
