"""Two dispatchers on separate engines (as two API processes) deliver each event once per endpoint,
in order per object, on SQLite and PostgreSQL (docs/WEBHOOKS.md)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.fixtures import ORG_A, Clinic
from tests.webhooks.conftest import Receiver, delivery_states, register
from therapy_scheduler.config import Settings
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.webhooks.delivery import make_http_client
from therapy_scheduler.webhooks.dispatcher import dispatch_once

SUBJECTS = 8
EVENTS_PER_SUBJECT = 5


async def dispatcher(settings: Settings) -> int:
    """A process of its own: its own engines and HTTP client; passes until there is no work."""
    db = Database.from_settings(settings)
    sent = 0
    idle = 0
    try:
        async with make_http_client(settings) as client:
            while idle < 3:
                result = await dispatch_once(db, settings, client)
                sent += result.sent
                idle = idle + 1 if result.sent == 0 and result.fanned_out == 0 else 0
                await asyncio.sleep(0)
    finally:
        await db.dispose()
    return sent


async def test_two_dispatchers_deliver_each_event_once_in_order_per_object(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    receiver: Receiver,
) -> None:
    await register(client, clinic, receiver.url, ["session.updated"])
    subjects = [uuid.uuid4() for _ in range(SUBJECTS)]
    emitted: list[str] = []
    for round_ in range(EVENTS_PER_SUBJECT):
        async with db.write() as conn:
            for subject in subjects:
                event_id = await outbox.emit_session_event(
                    conn,
                    organization_id=uuid.UUID(ORG_A),
                    event_type="session.updated",
                    session_id=subject,
                    therapist_id=uuid.uuid4(),
                    client_id=uuid.uuid4(),
                    facts={"status": f"round-{round_}"},
                )
                emitted.append(str(event_id))

    sent = await asyncio.gather(dispatcher(settings), dispatcher(settings))

    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted(emitted)  # every event, each exactly once
    assert sum(sent) == len(emitted)
    for subject in subjects:
        rounds = [
            json.loads(b)["data"]["status"]
            for b in receiver.bodies()
            if json.loads(b)["data"]["session_id"] == str(subject)
        ]
        assert rounds == [f"round-{i}" for i in range(EVENTS_PER_SUBJECT)]
    assert await delivery_states(db) == [("succeeded", 1)] * len(emitted)
