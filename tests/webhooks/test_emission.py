"""Which change writes which event (docs/WEBHOOKS.md, "Event types"): the lifecycle actions, a
reschedule, and the purge's expired holds, each in the outbox with the ids of its objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from tests.booking.conftest import book, hold_body, hold_ok, monday
from tests.booking.test_confirm import expire
from tests.fixtures import C1, T1, Clinic
from therapy_scheduler.booking.purge import purge_once
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import WebhookEvent


async def outbox(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(WebhookEvent.event_type, WebhookEvent.payload).order_by(WebhookEvent.seq)
        )
        return [(r[0], r[1]["data"]) for r in rows]


async def test_lifecycle_actions_and_reschedule_write_their_events(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    first = (await book(client, booking, hold_body(monday(1))))["session"]["id"]
    second = (await book(client, booking, hold_body(monday(2))))["session"]["id"]
    third = (await book(client, booking, hold_body(monday(4))))["session"]["id"]
    before = len(await outbox(db))
    headers = booking.headers("scheduler")
    assert (await client.post(f"/sessions/{first}/start", headers=headers)).status_code == 200
    assert (await client.post(f"/sessions/{first}/complete", headers=headers)).status_code == 200
    assert (await client.post(f"/sessions/{second}/no-show", headers=headers)).status_code == 200
    day = monday(4) + timedelta(days=1)
    r = await client.post(
        f"/sessions/{third}/reschedule",
        json={"time_zone": "America/New_York", "start_time": f"{day.isoformat()}T10:00"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    events = (await outbox(db))[before:]
    people = {"therapist_id": T1, "client_id": C1}
    assert [
        (t, d.get("session_id"), d.get("status")) for t, d in events if t.startswith("session.")
    ] == [
        ("session.updated", first, "in_progress"),
        ("session.completed", first, "completed"),
        ("session.no_show", second, "no_show"),
        ("session.updated", third, None),
    ]
    assert all(d["therapist_id"] == people["therapist_id"] for _, d in events)
    assert all(d["client_id"] == people["client_id"] for _, d in events)
    # The reschedule's hold is created (and confirmed into the same session).
    assert [t for t, _ in events if t.startswith("hold.")] == ["hold.created"]
    # Doing it again changes nothing and writes nothing.
    assert (await client.post(f"/sessions/{first}/complete", headers=headers)).status_code == 200
    assert len(await outbox(db)) == before + len(events)


async def test_the_purge_writes_hold_expired(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1)))
    await expire(db, held["hold_key"])
    result = await purge_once(db, datetime.now(UTC))
    assert result.expired == 1
    events = await outbox(db)
    assert [t for t, _ in events] == ["hold.created", "hold.expired"]
    assert events[0][1] == events[1][1]
    assert set(events[1][1]) == {"hold_id", "therapist_id", "client_id"}
    assert held["hold_key"] not in str(events)
