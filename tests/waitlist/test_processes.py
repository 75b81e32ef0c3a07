"""Two API processes (real OS processes under uvicorn) match freed slots at once: each cancel's own
matching after its COMMIT and both processes' periodic waitlist jobs run side by side on one
database, and still no entry gets two offers and no slot is offered twice (docs/WAITLIST.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from itertools import pairwise

import httpx
from sqlalchemy import func, select

from tests.api_processes import api_processes, counter
from tests.booking.conftest import monday
from tests.fixtures import T1, Clinic
from tests.waitlist.conftest import add_entry, booked_session
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import FreedSlot, Hold, HoldOccurrence, WaitlistOffer

MATCHING_ENV = {
    "THERAPY_SCHEDULER_WAITLIST_INTERVAL_SECONDS": "0.1",
    "THERAPY_SCHEDULER_WAITLIST_SETTLE_SECONDS": "10",
    "THERAPY_SCHEDULER_WEBHOOK_DISPATCH_INTERVAL_SECONDS": "0",
}


async def _all_processed(db: Database, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.read() as conn:
            pending = (
                await conn.execute(
                    select(func.count())
                    .select_from(FreedSlot)
                    .where(FreedSlot.processed_at.is_(None))
                )
            ).scalar_one()
        if pending == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{pending} freed slots still pending after {within} s")


async def test_two_api_processes_match_freed_slots_without_double_offers(
    client: httpx.AsyncClient, waiting: Clinic, db: Database, database_url: str
) -> None:
    # Three back-to-back hours of T1 on two Mondays, all cancelled at once through both processes;
    # four 30-minute entries of one client (so their offers must not overlap either).
    sessions = [
        await booked_session(client, waiting, monday(week), start, end)
        for week in (1, 2)
        for start, end in (("13:00", "14:00"), ("14:00", "15:00"), ("15:00", "16:00"))
    ]
    entries = [
        await add_entry(client, waiting, priority=p, duration_minutes=30) for p in (40, 30, 20, 10)
    ]
    async with api_processes(database_url, 2, MATCHING_ENV) as urls:
        async with httpx.AsyncClient(headers=waiting.headers("scheduler"), timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{urls[i % 2]}/sessions/cancel",
                        json={"session_id": session_id, "reason": "client_illness"},
                    )
                    for i, session_id in enumerate(sessions)
                )
            )
        await _all_processed(db)
        await asyncio.sleep(0.5)  # more periodic passes in both processes find nothing to do
        created = [
            await counter(url, "therapy_scheduler_waitlist_offers_total", event="created")
            for url in urls
        ]

    assert [r.status_code for r in answers] == [200] * len(sessions), [r.text for r in answers]
    async with db.read() as conn:
        offers = (await conn.execute(select(WaitlistOffer))).all()
        live = (
            await conn.execute(
                select(HoldOccurrence.start_time, HoldOccurrence.end_time)
                .join(Hold, Hold.id == HoldOccurrence.hold_id)
                .where(
                    Hold.status == "active",
                    HoldOccurrence.active.is_(True),
                    Hold.therapist_id == uuid.UUID(T1),
                )
                .order_by(HoldOccurrence.start_time)
            )
        ).all()
    # Every entry got exactly one offer (six free hours, four half-hour entries), none two.
    assert sorted(o.entry_id for o in offers) == sorted(uuid.UUID(e["id"]) for e in entries)
    assert {o.status for o in offers} == {"open"}
    assert sum(created) == len(entries)
    # No slot offered twice: the offers' holds never overlap, one hold per offer.
    assert len(live) == len(offers)
    for earlier, later in pairwise(live):
        assert earlier.end_time <= later.start_time
    # The answers name only offers that exist, each at most once.
    named = [r.json()["waitlist_offer_id"] for r in answers if r.json()["waitlist_offer_id"]]
    assert len(named) == len(set(named))
    assert set(named) <= {str(o.id) for o in offers}
