"""Webhook fixtures: a real HTTP receiver on 127.0.0.1 (a thread of this process) that records every
request and answers as the test tells it, and settings that allow delivering there."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.booking.conftest import booking  # noqa: F401 - the booking fixture, re-used
from tests.conftest import make_settings
from tests.fixtures import Clinic
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import WebhookDelivery
from therapy_scheduler.webhooks.delivery import make_http_client
from therapy_scheduler.webhooks.dispatcher import PassResult, dispatch_once


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got, and what it answers next: a queue of statuses (then 200); a status of
    0 means "hold the request open for `stall_seconds`" (a timeout for the sender)."""

    url: str
    received: list[Received] = field(default_factory=list)
    plan: list[int] = field(default_factory=list)
    stall_seconds: float = 7.0
    # Every answer waits this long (a slow receiver: deliveries in flight overlap other passes).
    delay_seconds: float = 0.0
    # Answer 500 to the first request whose body contains one of these (each used once).
    fail_once_matching: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stalled: threading.Event = field(default_factory=threading.Event)  # a request is being held

    def next_status(self, body: bytes) -> int:
        with self.lock:
            for text in self.fail_once_matching:
                if text.encode() in body:
                    self.fail_once_matching.remove(text)
                    return 500
            return self.plan.pop(0) if self.plan else 200

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            rec = state["r"]
            if rec.delay_seconds:
                time.sleep(rec.delay_seconds)
            status = rec.next_status(body)
            if status == 0:
                rec.stalled.set()
                time.sleep(rec.stall_seconds)
                status = 200
            else:
                with rec.lock:
                    rec.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
            self.send_response(status)
            self.send_header("content-length", "20")
            self.end_headers()
            self.wfile.write(b"receiver body secret")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    # A short poll, so that shutdown() at the end of each test returns at once (the default is 0.5 s).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state["r"]
    server.shutdown()
    server.server_close()


def webhook_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "webhook_allow_private_targets": True,
        "webhook_dispatch_interval_seconds": 0,  # the tests drive the dispatcher
        "webhook_timeout_seconds": 5.0,
        "webhook_retry_base_seconds": 10,
        "webhook_retry_max_delay_seconds": 3600,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return webhook_settings(database_url)


@pytest.fixture
async def sender() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(webhook_settings("sqlite+aiosqlite:///unused.db")) as client:
        yield client


async def register(
    client: httpx.AsyncClient,
    clinic: Clinic,
    url: str,
    event_types: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"url": url, "event_types": event_types or ["session.created"], **extra}
    r = await client.post("/admin/webhooks", json=body, headers=clinic.headers("admin"))
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def drain(
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    passes: int = 20,
) -> list[PassResult]:
    """Dispatch passes until one sends nothing (at most `passes`)."""
    results = []
    for _ in range(passes):
        result = await dispatch_once(db, settings, sender, now=now)
        results.append(result)
        if result.sent == 0 and result.fanned_out == 0:
            break
    return results


async def delivery_states(db: Database) -> list[tuple[str, int]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(WebhookDelivery.status, WebhookDelivery.attempts).order_by(
                WebhookDelivery.event_seq
            )
        )
        return [(r[0], r[1]) for r in rows]


def event_ids(receiver: Receiver) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.received]


def new_id() -> str:
    return str(uuid.uuid4())
