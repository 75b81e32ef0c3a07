"""The cancel scenario's sessions: booked through the contract (POST /sessions/hold, then
POST /sessions/confirm) before the measurement, and everything the run wrote removed afterwards.

Only the contract's endpoints and the tables every version of the schema has are required, so that the
scenario also measures an older checkout's server (bench/run --src …): the newer tables (the freed-slot
outbox, waitlist offers, webhook events, change counters) are cleaned only where they exist.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.booking_slots import Slot
from therapy_scheduler.config import normalize_database_url
from therapy_scheduler.infra.changes import BUMP_EVERY_ORGANIZATION

# A cancel more than this far ahead is never late under any organization policy the dataset uses,
# so every measured cancel takes the same path (no late-cancellation units kept).
NOT_LATE = timedelta(hours=48)
# Rows of newer features that a cancel may write, removed when their table exists
# (table, column holding the time they were written).
NEWER_ROWS = (
    ("waitlist_offers", "created_at"),
    ("freed_slots", "created_at"),
    ("webhook_events", "occurred_at"),
)


@dataclass
class Booked:
    session_ids: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)


def cancel_candidates(slots: list[Slot], now: datetime) -> list[Slot]:
    """One slot per therapist and start (no rivals: every hold should succeed), far enough ahead
    that its cancel is not late."""
    seen: set[tuple[uuid.UUID, datetime]] = set()
    out = []
    for slot in slots:
        key = (slot.therapist_id, slot.start_at)
        if key in seen or slot.start_at < now + NOT_LATE:
            continue
        seen.add(key)
        out.append(slot)
    return out


async def book(base: str, token: str, slots: list[Slot], *, concurrency: int = 8) -> Booked:
    """Holds and confirms each slot; returns the ids of the sessions made (order of `slots`)."""
    booked = Booked()
    made: dict[int, str] = {}
    queue: asyncio.Queue[tuple[int, Slot]] = asyncio.Queue()
    for item in enumerate(slots):
        queue.put_nowait(item)

    def refuse(stage: str, response: httpx.Response) -> None:
        try:
            code = str(response.json().get("code"))
        except ValueError:
            code = f"HTTP_{response.status_code}"
        key = f"{stage}:{code}"
        booked.refused[key] = booked.refused.get(key, 0) + 1

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            index, slot = queue.get_nowait()
            hold = await http.post("/sessions/hold", json=slot.hold_body())
            if hold.status_code != 200:
                refuse("hold", hold)
                continue
            confirm = await http.post(
                "/sessions/confirm",
                json={
                    "hold_key": hold.json()["hold_key"],
                    "session": {"start_time": slot.start, "end_time": slot.end},
                },
            )
            if confirm.status_code != 200:
                refuse("confirm", confirm)
                continue
            made[index] = confirm.json()["session"]["id"]

    limits = httpx.Limits(max_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    booked.session_ids = [made[i] for i in sorted(made)]
    return booked


async def cancelled_count(url: str, session_ids: list[str]) -> int:
    """How many of the sessions are cancelled now (the scenario's check that its 200s were real)."""
    if not session_ids:
        return 0
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.connect() as conn:
            total = 0
            for start in range(0, len(session_ids), 1000):
                chunk = [uuid.UUID(s) for s in session_ids[start : start + 1000]]
                statement = text(
                    "SELECT count(*) FROM sessions WHERE status = 'cancelled' AND id = ANY(:ids)"
                )
                total += (await conn.execute(statement, {"ids": chunk})).scalar_one()
            return int(total)
    finally:
        await engine.dispose()


async def settled_count(url: str, session_ids: list[str], *, quiet: float = 1.0) -> int:
    """The cancelled count once it has stopped changing for `quiet` seconds (at most 30 s): the
    cancels wrk sent before it stopped are answered after its end, and must land before the
    clean-up deletes their sessions."""
    deadline = time.monotonic() + 30
    last = await cancelled_count(url, session_ids)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = await cancelled_count(url, session_ids)
        if now == last:
            break
        last = now
    return last


async def remove_since(url: str, since: datetime) -> None:
    """Removes the sessions, holds and cancellations written since `since`, and the newer features'
    rows of them; then invalidates the ETags issued meanwhile (a write outside the service,
    docs/DECISIONS.md, "Conditional requests")."""
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            tables = {
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema()"
                    )
                )
            }
            for table, column in NEWER_ROWS:
                if table in tables:
                    await conn.execute(
                        text(f"DELETE FROM {table} WHERE {column} >= :since"),  # noqa: S608
                        {"since": since},
                    )
            await conn.execute(
                text(
                    "DELETE FROM cancellations WHERE session_id IN "
                    "(SELECT id FROM sessions WHERE created_at >= :since)"
                ),
                {"since": since},
            )
            await conn.execute(
                text("DELETE FROM sessions WHERE created_at >= :since"), {"since": since}
            )
            await conn.execute(
                text("DELETE FROM holds WHERE created_at >= :since"), {"since": since}
            )
            if "change_counters" in tables:
                await conn.execute(text(BUMP_EVERY_ORGANIZATION), {"stripe": 0})
    finally:
        await engine.dispose()
