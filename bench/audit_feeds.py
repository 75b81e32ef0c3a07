"""Measures the cost of PHI-read auditing and of calendar feeds on a demo clinic.

    .venv/bin/python -m bench.audit_feeds [DATABASE_URL] [--rounds N]

Default: a fresh SQLite file. With a PostgreSQL URL the database must exist and be empty. Reports:
1. GET /get-sessions-optimized latency with the buffered phi.read writer vs with auditing switched off;
2. what the alternative costs: one synchronous audit INSERT transaction per read;
3. the flush of 200 buffered events;
4. GET /calendar/{token}.ics latency for the busiest therapist.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings
from therapy_scheduler.demo.clinic import build_demo
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.audit_log import AuditEntry, append_entries
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.migrations import upgrade
from therapy_scheduler.models import Session, User


class _Off(AuditWriter):
    def add(self, entry: AuditEntry) -> None:
        return None


def _summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
    }


async def _timed(rounds: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(5):
        await call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return _summary(samples)


async def main(url: str, rounds: int) -> None:
    upgrade(url)
    settings = Settings(
        database_url=url, environment="test", rate_limit_user="off", rate_limit_ip="off"
    )
    app = create_app(settings)
    db = app.state.db
    doc = build_demo(therapists=25, clients=120, weeks=8, today=utcnow().date())
    async with db.write() as conn:
        await import_document(conn, parse_document(doc))
        admin = (await conn.execute(select(User.id).where(User.role == "admin"))).scalar_one()
        org = (await conn.execute(select(User.organization_id).where(User.id == admin))).scalar()
        busiest = (
            await conn.execute(
                select(Session.therapist_id)
                .group_by(Session.therapist_id)
                .order_by(func.count().desc())
                .limit(1)
            )
        ).scalar_one()
    headers = {"Authorization": f"Bearer {mint_token(settings, admin)}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def read() -> None:
            r = await client.get("/get-sessions-optimized", params={"limit": 50}, headers=headers)
            assert r.status_code == 200

        # Interleaved, so that load from elsewhere on the machine hits both sides alike.
        real_writer = app.state.audit_writer
        off = _Off(db)
        samples: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(5):
            await read()
        for i in range(rounds * 2):
            side = "on" if i % 2 == 0 else "off"
            app.state.audit_writer = real_writer if side == "on" else off
            started = time.perf_counter()
            await read()
            samples[side].append((time.perf_counter() - started) * 1000)
        app.state.audit_writer = real_writer
        with_audit, without_audit = (_summary(samples[k]) for k in ("on", "off"))
        await real_writer.flush()

        clients = tuple(uuid.uuid4() for _ in range(30))

        def entry() -> AuditEntry:
            return AuditEntry(
                organization_id=org,
                actor_user_id=admin,
                action="phi.read",
                entity_type="sessions",
                entity_id="get-sessions-optimized",
                request_id=None,
                occurred_at=utcnow(),
                details={"endpoint": "get-sessions-optimized", "session_count": 50},
                client_ids=clients,
            )

        async def sync_insert() -> None:
            async with db.write() as conn:
                await append_entries(conn, [entry()])

        per_read_insert = await _timed(rounds, sync_insert)

        for _ in range(200):
            real_writer.add(entry())
        started = time.perf_counter()
        await real_writer.flush()
        flush_200 = round((time.perf_counter() - started) * 1000, 1)

        created = await client.post(
            "/calendar/feeds", json={"therapist_id": str(busiest)}, headers=headers
        )
        path = created.json()["path"]
        feed_body = (await client.get(path)).content

        async def feed() -> None:
            r = await client.get(path)
            assert r.status_code == 200

        cpu_started = time.process_time()
        feed_latency = await _timed(rounds, feed)
        feed_latency["cpu_ms_per_request"] = round(
            (time.process_time() - cpu_started) * 1000 / (rounds + 5), 1
        )
        feed_events = feed_body.count(b"BEGIN:VEVENT")
        await real_writer.close()
    await db.dispose()
    print(f"database: {db.dialect}; rounds: {rounds}")
    print(f"get-sessions-optimized, buffered phi.read : {with_audit}")
    print(f"get-sessions-optimized, auditing off      : {without_audit}")
    print(f"one synchronous audit INSERT transaction  : {per_read_insert}")
    print(f"flush of 200 buffered events (30 clients) : {flush_200} ms")
    print(f"calendar feed of busiest therapist        : {feed_latency}")
    print(f"  ({feed_events} events, {len(feed_body)} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    url = args.url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    asyncio.run(main(url, args.rounds))
