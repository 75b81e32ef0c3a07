"""Two API processes (real OS processes under uvicorn, each running the dispatcher from its lifespan)
on one database deliver every event exactly once per endpoint to a real receiver on 127.0.0.1: the
job lock and the lease keep them apart (docs/WEBHOOKS.md). Nothing crashes here, so at-least-once
allows no duplicate."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select

from tests.api_processes import api_processes, counter
from tests.fixtures import ORG_A, Clinic
from tests.webhooks.conftest import Receiver, register
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import WebhookDelivery

SUBJECTS = 10
ROUNDS = 4
DISPATCH_ENV = {
    "THERAPY_SCHEDULER_WEBHOOK_DISPATCH_INTERVAL_SECONDS": "0.02",
    "THERAPY_SCHEDULER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "THERAPY_SCHEDULER_WEBHOOK_TIMEOUT_SECONDS": "10",
    # Small claims and a slow receiver: while one process sends its claim, the other claims the next.
    "THERAPY_SCHEDULER_WEBHOOK_BATCH": "2",
    "THERAPY_SCHEDULER_WAITLIST_INTERVAL_SECONDS": "0",
}


async def _emit_round(db: Database, subjects: list[uuid.UUID], round_: int) -> list[str]:
    emitted = []
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
    return emitted


async def _settled(db: Database, expected: int, within: float = 90) -> None:
    """Until every delivery has succeeded (each process keeps passing afterwards)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.read() as conn:
            done = (
                await conn.execute(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status == "succeeded")
                )
            ).scalar_one()
        if done >= expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{done} of {expected} deliveries succeeded in {within} s")


async def test_two_api_processes_deliver_each_event_once_per_endpoint(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    database_url: str,
    receiver: Receiver,
) -> None:
    receiver.delay_seconds = 0.15
    first = await register(client, clinic, receiver.url + "/first", ["session.updated"])
    second = await register(client, clinic, receiver.url + "/second", ["session.updated"])
    subjects = [uuid.uuid4() for _ in range(SUBJECTS)]
    emitted: list[str] = []
    async with api_processes(database_url, 2, DISPATCH_ENV) as urls:
        # Events keep arriving while both processes dispatch.
        for round_ in range(ROUNDS):
            emitted += await _emit_round(db, subjects, round_)
            await asyncio.sleep(0.1)
        await _settled(db, 2 * len(emitted))
        await asyncio.sleep(1.0)  # further passes of both processes must send nothing more
        succeeded = [
            await counter(url, "therapy_scheduler_webhook_deliveries_total", result="succeeded")
            for url in urls
        ]

    for endpoint in (first, second):
        path = "/hooks/" + ("first" if endpoint is first else "second")
        got = [r for r in receiver.received if r.path == path]
        ids = Counter(r.headers["webhook-id"] for r in got)
        assert sorted(ids) == sorted(emitted)
        assert set(ids.values()) == {1}, "an event was delivered twice to one endpoint"
        for subject in subjects:
            rounds = [
                json.loads(r.body)["data"]["status"]
                for r in got
                if json.loads(r.body)["data"]["session_id"] == str(subject)
            ]
            assert rounds == [f"round-{i}" for i in range(ROUNDS)]
    # Each process delivered a share, and together exactly the events (the metric counts a
    # process's successful attempts).
    assert sum(succeeded) == 2 * len(emitted)
    assert all(n > 0 for n in succeeded), succeeded
    async with db.read() as conn:
        attempts = (await conn.execute(select(WebhookDelivery.attempts))).scalars().all()
    assert attempts == [1] * (2 * len(emitted))
