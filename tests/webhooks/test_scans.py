"""Reminders and authorization warnings (docs/WEBHOOKS.md): due at the right instant across a DST
change, emitted once each however often the scan runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from tests.booking.conftest import NY, book, hold_body, set_org_settings, today_ny
from tests.fixtures import A1, Clinic
from tests.webhooks.conftest import Receiver, drain, register
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Authorization, WebhookEvent
from therapy_scheduler.webhooks.scans import scan_once

# New York leaves standard time on Sunday 14 March 2027 (02:00 EST → 03:00 EDT).
DST_MONDAY = date(2027, 3, 15)


async def events(db: Database, event_type: str) -> list[Any]:
    async with db.read() as conn:
        return list(
            await conn.execute(
                select(WebhookEvent.payload, WebhookEvent.occurred_at)
                .where(WebhookEvent.event_type == event_type)
                .order_by(WebhookEvent.seq)
            )
        )


async def test_reminders_are_due_an_absolute_duration_before_the_start_across_dst(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await set_org_settings(db, reminder_lead_minutes=[2880, 120])
    await register(client, booking, receiver.url, ["session.reminder_due"])
    confirmed = await book(client, booking, hold_body(DST_MONDAY, "11:00", "12:00"))
    session_id = confirmed["session"]["id"]
    start = datetime(2027, 3, 15, 15, 0, tzinfo=UTC)  # 11:00 EDT
    assert confirmed["session"]["start_time"] == "2027-03-15T15:00:00Z"
    due_48h = start - timedelta(hours=48)
    # 48 real hours before 11:00 EDT on Monday is 10:00 EST on Saturday, not 11:00.
    assert due_48h.astimezone(NY).hour == 10

    def ours(rows: list[Any]) -> list[tuple[int, datetime]]:
        return [
            (r.payload["data"]["lead_minutes"], r.occurred_at)
            for r in rows
            if r.payload["data"]["session_id"] == session_id
        ]

    await scan_once(db, due_48h - timedelta(seconds=1))
    assert ours(await events(db, "session.reminder_due")) == []
    await scan_once(db, due_48h)
    await scan_once(
        db, due_48h + timedelta(minutes=5)
    )  # a later scan (or a restart) repeats nothing
    assert ours(await events(db, "session.reminder_due")) == [(2880, due_48h)]
    due_2h = start - timedelta(hours=2)
    await scan_once(db, due_2h - timedelta(seconds=1))
    assert len(ours(await events(db, "session.reminder_due"))) == 1
    await scan_once(db, due_2h)
    assert ours(await events(db, "session.reminder_due")) == [(2880, due_48h), (120, due_2h)]
    await scan_once(db, start)  # started: nothing more
    assert len(ours(await events(db, "session.reminder_due"))) == 2

    await drain(db, settings, sender, now=start)
    delivered = [json.loads(b) for b in receiver.bodies()]
    mine = [d for d in delivered if d["data"]["session_id"] == session_id]
    assert [(d["data"]["lead_minutes"], d["timestamp"]) for d in mine] == [
        (2880, "2027-03-13T15:00:00Z"),
        (120, "2027-03-15T13:00:00Z"),
    ]
    assert set(mine[0]["data"]) == {"session_id", "therapist_id", "client_id", "lead_minutes"}


async def test_cancelled_sessions_get_no_reminder_and_unsubscribed_organizations_no_scan(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    receiver: Receiver,
) -> None:
    confirmed = await book(client, booking, hold_body(DST_MONDAY, "11:00", "12:00"))
    start = datetime(2027, 3, 15, 15, 0, tzinfo=UTC)
    # No endpoint wants reminders: the scan writes nothing.
    await scan_once(db, start - timedelta(hours=1))
    assert await events(db, "session.reminder_due") == []
    await register(client, booking, receiver.url, ["session.reminder_due"])
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": confirmed["session"]["id"], "reason": "client_illness"},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    await scan_once(db, start - timedelta(hours=1))
    ids = {r.payload["data"]["session_id"] for r in await events(db, "session.reminder_due")}
    assert confirmed["session"]["id"] not in ids


async def test_authorization_low_units_and_expiring_are_emitted_once(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    receiver: Receiver,
) -> None:
    await register(
        client, booking, receiver.url, ["authorization.low_units", "authorization.expiring"]
    )
    now = datetime.now(UTC)
    await set_org_settings(db, authorization_low_units_threshold=5, authorization_expiring_days=0)
    await scan_once(db, now)
    # A1 has 80 units of 97153 and 8 of 97155 left: none below 5; nothing is near its end.
    low = await events(db, "authorization.low_units")
    assert [r for r in low if r.payload["data"]["authorization_id"] == A1] == []
    assert await events(db, "authorization.expiring") == []
    await set_org_settings(db, authorization_low_units_threshold=90, authorization_expiring_days=14)
    async with db.write() as conn:
        await conn.execute(
            update(Authorization)
            .where(Authorization.id == uuid.UUID(A1))
            .values(end_date=today_ny() + timedelta(days=10))
        )
    await scan_once(db, now)
    await scan_once(db, now + timedelta(minutes=1))
    low = await events(db, "authorization.low_units")
    assert sorted(
        (r.payload["data"]["service_code"], r.payload["data"]["threshold"])
        for r in low
        if r.payload["data"]["authorization_id"] == A1
    ) == [("97153", 90), ("97155", 90)]
    expiring = await events(db, "authorization.expiring")
    assert [r.payload["data"]["authorization_id"] for r in expiring] == [A1]
    assert set(expiring[0].payload["data"]) == {"authorization_id", "client_id", "days_before"}
