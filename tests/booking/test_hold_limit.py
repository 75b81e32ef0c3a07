"""The cap on active holds per user (organization settings `max_active_holds_therapist` and
`max_active_holds_staff`): nobody can squat a calendar by holding in a loop. Only holds that still
block count: confirmed, released and expired ones do not. The concurrent case (two server processes)
is in test_race.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
from sqlalchemy import update

from tests.booking.conftest import book, hold, hold_body, hold_ok, monday, table_count
from tests.fixtures import Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold


def _days(n: int) -> list[date]:
    return [monday(w) for w in range(1, n + 1)]


async def _set_limits(client: httpx.AsyncClient, clinic: Clinic, **limits: int) -> None:
    r = await client.patch(
        "/admin/organization/settings", json=limits, headers=clinic.headers("admin")
    )
    assert r.status_code == 200, r.text


async def test_a_therapist_cannot_hold_beyond_the_limit(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await _set_limits(client, booking, max_active_holds_therapist=2)
    first, second, third = _days(3)
    held = [await hold_ok(client, booking, hold_body(d), "therapist") for d in (first, second)]
    r = await hold(client, booking, hold_body(third), "therapist")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "HOLD_LIMIT_REACHED"
    assert body["details"] == {
        "limit": 2,
        "active_holds": 2,
        "next_expiry": min(h["expires_at"] for h in held),
    }
    assert await table_count(db, "holds") == 2  # nothing written
    # Releasing one frees a place; the limit is per user: the scheduler still holds freely.
    r = await client.delete(
        f"/sessions/hold/{held[0]['hold_key']}", headers=booking.headers("therapist")
    )
    assert r.status_code == 200, r.text
    await hold_ok(client, booking, hold_body(third), "therapist")
    await hold_ok(client, booking, hold_body(first, "10:00", "11:00"), "scheduler")
    r = await hold(client, booking, hold_body(first, "15:00", "16:00"), "therapist")
    assert (r.status_code, r.json()["code"]) == (409, "HOLD_LIMIT_REACHED")


async def test_confirmed_and_expired_holds_do_not_count(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await _set_limits(client, booking, max_active_holds_therapist=1)
    first, second, third = _days(3)
    await book(client, booking, hold_body(first), "therapist")  # confirmed: no longer counts
    stale = await hold_ok(client, booking, hold_body(second), "therapist")
    r = await hold(client, booking, hold_body(third), "therapist")
    assert (r.status_code, r.json()["code"]) == (409, "HOLD_LIMIT_REACHED")
    # The active hold expires (its time moved into the past): it stops counting at once, before
    # any purge has marked it expired.
    async with db.write() as conn:
        await conn.execute(
            update(Hold)
            .where(Hold.hold_key == stale["hold_key"])
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    await hold_ok(client, booking, hold_body(third), "therapist")


async def test_staff_have_their_own_limit(client: httpx.AsyncClient, booking: Clinic) -> None:
    await _set_limits(client, booking, max_active_holds_staff=1, max_active_holds_therapist=5)
    first, second = _days(2)
    await hold_ok(client, booking, hold_body(first), "scheduler")
    r = await hold(client, booking, hold_body(second), "scheduler")
    assert r.status_code == 409, r.text
    assert r.json()["details"]["limit"] == 1
    await hold_ok(client, booking, hold_body(second), "therapist")  # T1's own limit is 5


async def test_the_limits_are_validated_and_documented(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    for bad in (0, -1, "ten", 10_001):
        r = await client.patch(
            "/admin/organization/settings",
            json={"max_active_holds_staff": bad},
            headers=booking.headers("admin"),
        )
        assert r.status_code == 400, r.text
    r = await client.get("/admin/organization/settings", headers=booking.headers("admin"))
    settings = r.json()["data"]["settings"]
    assert (settings["max_active_holds_therapist"], settings["max_active_holds_staff"]) == (10, 100)
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/sessions/hold", "/sessions/{session_id}/reschedule"):
        assert "HOLD_LIMIT_REACHED" in paths[path]["post"]["responses"]["409"]["description"]
