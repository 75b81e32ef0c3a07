"""The webhook dispatcher (docs/WEBHOOKS.md), run from the app's lifespan in every API process.

A pass: (1) fan out new outbox events into one delivery per subscribed, enabled endpoint; (2) claim
due deliveries under a lease; (3) send them, outside any transaction (`webhooks/delivery.py`);
(4) record each attempt. The
fan-out and the claim take a job lock (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE), so one
process at a time does them; a claimed delivery is leased, so no other process sends it while the
lease runs. A process killed mid-send loses nothing: the lease ends and the delivery is sent again
(at least once; receivers deduplicate on `webhook-id`).

Order per object: a delivery is claimed only when no earlier event about the same object is still
pending for that endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.jobs import try_lock_job
from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from therapy_scheduler.webhooks.delivery import Claimed, Outcome, make_http_client, send
from therapy_scheduler.webhooks.scans import forget_once, scan_once

log = logging.getLogger("therapy_scheduler.webhooks")
FAN_OUT_BATCH = 500
FORGET_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class PassResult:
    fanned_out: int
    sent: int
    succeeded: int


def retry_delay(
    attempts: int, settings: Settings, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt after `attempts` failures: the base doubled each time, capped,
    then between half and all of it (jitter), so receivers coming back are not hit all at once."""
    delay: float = min(
        settings.webhook_retry_max_delay_seconds,
        settings.webhook_retry_base_seconds * 2.0 ** min(attempts - 1, 30),
    )
    return delay * (0.5 + rand() / 2)


async def fan_out(conn: AsyncConnection, now: datetime) -> int:
    """One delivery per (new event, enabled endpoint of its organization subscribed to its type and
    registered by the time it happened); the events are then marked fanned out."""
    events = list(
        await conn.execute(
            select(
                WebhookEvent.seq,
                WebhookEvent.organization_id,
                WebhookEvent.event_type,
                WebhookEvent.subject_id,
                WebhookEvent.occurred_at,
            )
            .where(WebhookEvent.fanned_out.is_(False))
            .order_by(WebhookEvent.seq)
            .limit(FAN_OUT_BATCH)
        )
    )
    if not events:
        return 0
    endpoints = list(
        await conn.execute(
            select(
                WebhookEndpoint.id,
                WebhookEndpoint.organization_id,
                WebhookEndpoint.event_types,
                WebhookEndpoint.created_at,
            ).where(
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.organization_id.in_({e.organization_id for e in events}),
            )
        )
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": e.organization_id,
            "endpoint_id": ep.id,
            "event_seq": e.seq,
            "subject_id": e.subject_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in events
        for ep in endpoints
        if ep.organization_id == e.organization_id
        and e.event_type in ep.event_types
        and ep.created_at <= e.occurred_at
    ]
    if rows:
        await conn.execute(insert(WebhookDelivery), rows)
    await conn.execute(
        update(WebhookEvent)
        .where(WebhookEvent.seq.in_([e.seq for e in events]))
        .values(fanned_out=True)
    )
    return len(rows)


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=2 * settings.webhook_timeout_seconds + 30)


async def claim(conn: AsyncConnection, settings: Settings, now: datetime) -> list[Claimed]:
    """Due deliveries of enabled endpoints whose earlier events about the same object are done,
    leased to this process."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.subject_id == WebhookDelivery.subject_id,
        earlier.event_seq < WebhookDelivery.event_seq,
        earlier.status == "pending",
    )
    rows = list(
        await conn.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.organization_id,
                WebhookDelivery.first_attempt_at,
                WebhookEvent.event_id,
                WebhookEvent.payload,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookEndpoint.previous_secret,
                WebhookEndpoint.previous_secret_expires_at,
            )
            .join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
                WebhookEndpoint.enabled.is_(True),
                ~blocked,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_seq)
            .limit(settings.webhook_batch)
        )
    )
    if not rows:
        return []
    await conn.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([r.id for r in rows]))
        .values(lease_until=now + _lease(settings))
    )
    return [
        Claimed(
            delivery_id=r.id,
            endpoint_id=r.endpoint_id,
            organization_id=r.organization_id,
            event_id=r.event_id,
            payload=r.payload,
            url=r.url,
            secrets=[r.secret]
            + (
                [r.previous_secret]
                if r.previous_secret
                and r.previous_secret_expires_at is not None
                and r.previous_secret_expires_at > now
                else []
            ),
            first_attempt_at=r.first_attempt_at,
        )
        for r in rows
    ]


async def record(
    conn: AsyncConnection,
    settings: Settings,
    item: Claimed,
    outcome: Outcome,
    now: datetime,
) -> str:
    """The attempt, and what follows it: done, retried later, or given up; the endpoint's run of
    failures counted (and the endpoint disabled at the configured length). Returns the result."""
    await conn.execute(
        insert(WebhookAttempt).values(
            id=uuid.uuid4(),
            organization_id=item.organization_id,
            delivery_id=item.delivery_id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
        )
    )
    current = (
        await conn.execute(
            select(WebhookDelivery.attempts, WebhookDelivery.first_attempt_at).where(
                WebhookDelivery.id == item.delivery_id
            )
        )
    ).first()
    if current is None:  # the endpoint was removed meanwhile
        return "gone"
    attempts = int(current.attempts) + 1
    first = current.first_attempt_at or now
    common = {
        "attempts": attempts,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "lease_until": None,
    }
    if outcome.succeeded:
        await conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == item.delivery_id)
            .values(status="succeeded", completed_at=now, **common)
        )
        await conn.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == item.endpoint_id)
            .values(consecutive_failures=0)
        )
        return "succeeded"
    given_up = (now - first).total_seconds() >= settings.webhook_retry_window_seconds
    values: dict[str, Any] = (
        {"status": "failed", "completed_at": now}
        if given_up
        else {"next_attempt_at": now + timedelta(seconds=retry_delay(attempts, settings))}
    )
    # A delivery another process already completed (its lease had run out) stays completed.
    await conn.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.delivery_id, WebhookDelivery.status == "pending")
        .values(**values, **common)
    )
    failures = (
        await conn.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == item.endpoint_id)
            .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
            .returning(WebhookEndpoint.consecutive_failures)
        )
    ).scalar()
    if failures is not None and failures >= settings.webhook_disable_after_failures:
        await conn.execute(
            update(WebhookEndpoint)
            .where(and_(WebhookEndpoint.id == item.endpoint_id, WebhookEndpoint.enabled.is_(True)))
            .values(enabled=False, disabled_reason="failures", updated_at=now)
        )
    return "failed" if given_up else "retry"


async def dispatch_once(
    db: Database,
    settings: Settings,
    client: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
    metrics: Metrics | None = None,
    *,
    now: datetime | None = None,
) -> PassResult:
    """One pass (fan out, claim, send, record). `now` drives the schedule (tests move it forward);
    signatures always carry the real time."""
    at = now or utcnow()
    async with db.read() as conn:
        if not await _anything_to_do(conn, at):
            return PassResult(0, 0, 0)  # an idle pass takes no write lock
    async with db.write() as conn:
        if not await try_lock_job(conn, "webhook-dispatch"):
            return PassResult(0, 0, 0)  # another process is fanning out and claiming
        made = await fan_out(conn, at)
        claimed = await claim(conn, settings, at)
    if not claimed:
        return PassResult(made, 0, 0)
    http = client() if callable(client) else client
    outcomes = await asyncio.gather(*(send(http, settings, item) for item in claimed))
    succeeded = 0
    async with db.write() as conn:
        for item, outcome in zip(claimed, outcomes, strict=True):
            result = await record(conn, settings, item, outcome, now or utcnow())
            succeeded += result == "succeeded"
            if metrics is not None:
                metrics.webhook_deliveries.labels(result=result).inc()
                metrics.webhook_latency.observe(outcome.latency_ms / 1000)
    return PassResult(made, len(claimed), succeeded)


async def _anything_to_do(conn: AsyncConnection, now: datetime) -> bool:
    new_event = select(WebhookEvent.seq).where(WebhookEvent.fanned_out.is_(False)).limit(1)
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .limit(1)
    )
    return (await conn.execute(new_event)).first() is not None or (
        await conn.execute(due)
    ).first() is not None


async def run_dispatch_loop(db: Database, settings: Settings, metrics: Metrics) -> None:
    """Dispatch every `webhook_dispatch_interval_seconds` and scan for due reminders and
    authorization warnings every `webhook_scan_interval_seconds`, until cancelled."""
    last_scan = last_forget = -math.inf
    opened: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:
        # Made on first use: building its TLS context takes a moment of the event loop, which a
        # process with nothing to deliver should not spend (least of all while it starts).
        if not opened:
            opened.append(make_http_client(settings))
        return opened[0]

    try:
        await asyncio.sleep(settings.webhook_dispatch_interval_seconds)
        while True:
            try:
                if time.monotonic() - last_scan >= settings.webhook_scan_interval_seconds:
                    last_scan = time.monotonic()
                    await scan_once(db, utcnow())
                if time.monotonic() - last_forget >= FORGET_INTERVAL_SECONDS:
                    last_forget = time.monotonic()
                    await forget_once(db, utcnow(), retention_days=settings.webhook_retention_days)
                result = await dispatch_once(db, settings, client, metrics)
                if result.sent:
                    continue  # more may be due: no pause while there is work
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass retries; requests never depend on this
                log.warning("webhook dispatch failed: %s", type(exc).__name__)
            await asyncio.sleep(settings.webhook_dispatch_interval_seconds)
    finally:
        for http in opened:
            await http.aclose()
