"""Races (docs/WAITLIST.md) with real concurrent transactions on SQLite and PostgreSQL: overlapping
freed slots matched at once (no entry gets two offers, no slot is offered twice), and an offer
accepted while it expires (exactly one outcome)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
from sqlalchemy import select

from tests.booking.conftest import monday
from tests.fixtures import Clinic
from tests.waitlist.conftest import add_entry, booked_session, cancel
from therapy_scheduler.calendar import freed
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import FreedSlot, Hold, HoldOccurrence, Session, WaitlistOffer
from therapy_scheduler.waitlist.matcher import process_freed
from therapy_scheduler.waitlist.offers import expire_lapsed


async def test_overlapping_freed_slots_matched_at_once(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    # Two sessions back to back, and a third freed range overlapping both (a removed time off).
    first = await booked_session(client, waiting, day, "13:00", "14:00")
    second = await booked_session(client, waiting, day, "14:00", "15:00")
    entries = [
        await add_entry(client, waiting, priority=p, duration_minutes=30) for p in (30, 20, 10)
    ]
    freed.unregister(db)  # match by hand below, from several "processes" at once
    await asyncio.gather(cancel(client, waiting, first), cancel(client, waiting, second))
    now = datetime.now(UTC)
    async with db.write() as conn:
        rows = (await conn.execute(select(FreedSlot))).all()
        await freed.record_freed(
            conn,
            organization_id=rows[0].organization_id,
            therapist_id=rows[0].therapist_id,
            start=min(r.start_time for r in rows) + timedelta(minutes=30),
            end=max(r.end_time for r in rows) - timedelta(minutes=30),
            cause="time_off",
            now=now,
        )
    await asyncio.gather(*(process_freed(db, None) for _ in range(4)))

    async with db.read() as conn:
        offers = (
            await conn.execute(
                select(WaitlistOffer)
                .where(WaitlistOffer.status == "open")
                .order_by(WaitlistOffer.start_time)
            )
        ).all()
        live = (
            await conn.execute(
                select(HoldOccurrence.start_time, HoldOccurrence.end_time)
                .join(Hold, Hold.id == HoldOccurrence.hold_id)
                .where(Hold.status == "active", HoldOccurrence.active.is_(True))
                .order_by(HoldOccurrence.start_time)
            )
        ).all()
        pending = (
            await conn.execute(select(FreedSlot).where(FreedSlot.processed_at.is_(None)))
        ).all()
    assert pending == []
    # Every entry got at most one offer, and (three freed ranges, three 30-minute entries, two
    # hours free) every entry got one.
    assert sorted(o.entry_id for o in offers) == sorted(uuid.UUID(e["id"]) for e in entries)
    # No slot was offered twice: the offers' holds do not overlap, and each offer has its hold.
    assert len(live) == len(offers)
    for earlier, later in pairwise(live):
        assert earlier.end_time <= later.start_time


async def test_offer_accepted_while_it_expires_has_one_outcome(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    outcomes = set()
    for week in range(1, 5):
        day = monday(week)
        await add_entry(client, waiting, earliest_date=day.isoformat(), latest_date=day.isoformat())
        r = await cancel(client, waiting, await booked_session(client, waiting, day))
        offer_id = r.json()["waitlist_offer_id"]
        assert offer_id is not None
        async with db.read() as conn:
            offer = (
                await conn.execute(
                    select(WaitlistOffer).where(WaitlistOffer.id == uuid.UUID(offer_id))
                )
            ).one()
        accepted, _ = await asyncio.gather(
            client.post(
                f"/waitlist/offers/{offer_id}/accept", headers=waiting.headers("scheduler")
            ),
            expire_lapsed(db, offer.expires_at + timedelta(seconds=1)),
        )
        await freed.drain()
        async with db.read() as conn:
            after = (
                await conn.execute(
                    select(WaitlistOffer).where(WaitlistOffer.id == uuid.UUID(offer_id))
                )
            ).one()
            hold = (await conn.execute(select(Hold).where(Hold.id == offer.hold_id))).one()
            sessions = (
                await conn.execute(
                    select(Session.id).where(
                        Session.start_time == offer.start_time,
                        Session.status == "scheduled",
                    )
                )
            ).all()
        if accepted.status_code == 200:
            assert (after.status, hold.status, len(sessions)) == ("accepted", "confirmed", 1)
            assert after.session_id == sessions[0].id
        else:
            assert accepted.status_code == 410, accepted.text
            assert accepted.json()["code"] == "OFFER_EXPIRED"
            assert (after.status, hold.status, len(sessions)) == ("expired", "expired", 0)
        outcomes.add(after.status)
    assert outcomes <= {"accepted", "expired"}
