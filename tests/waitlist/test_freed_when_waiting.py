"""A freeing change records its slot only while someone waits (docs/DECISIONS.md, "The cancel and the
waitlist"), on SQLite and PostgreSQL: the check runs inside the freeing transaction, so an entry
added or removed between two cancels counts for the very next one, and an entry committed while a
cancel waits for its locks is not missed (real concurrent transactions, PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select, text

from tests.booking.conftest import monday, table_count
from tests.fixtures import T1, Clinic
from tests.waitlist.conftest import add_entry, booked_session, cancel
from therapy_scheduler.booking.rules.locks import lock_key
from therapy_scheduler.calendar import freed
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import WaitlistOffer

# An entry's windows that fit none of the sessions below (they are on Mondays 13:00-15:00).
ELSEWHERE = [{"weekday": 0, "start": "16:00", "end": "17:00"}]


async def test_entries_added_and_removed_count_for_the_next_cancel(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    sessions = [
        await booked_session(client, waiting, monday(week), start, end)
        for week in (1, 2)
        for start, end in (("13:00", "14:00"), ("14:00", "15:00"))
    ]

    # Nobody waits: no outbox row.
    assert (await cancel(client, waiting, sessions[0])).status_code == 200
    assert await table_count(db, "freed_slots") == 0

    # Someone waits (for other hours): the next cancel's slot is recorded, and matched to nobody.
    entry = await add_entry(client, waiting, windows=ELSEWHERE)
    r = await cancel(client, waiting, sessions[1])
    assert r.json()["waitlist_offer_id"] is None
    assert await table_count(db, "freed_slots", "processed_at IS NOT NULL") == 1

    # The last entry removed: cancels write no outbox row again.
    removed = await client.delete(f"/waitlist/{entry['id']}", headers=waiting.headers("scheduler"))
    assert removed.status_code == 200, removed.text
    assert (await cancel(client, waiting, sessions[2])).status_code == 200
    assert await table_count(db, "freed_slots") == 1

    # A fitting entry added: the next cancel's slot is offered to it.
    fitting = await add_entry(client, waiting)
    offer_id = (await cancel(client, waiting, sessions[3])).json()["waitlist_offer_id"]
    assert offer_id is not None
    async with db.read() as conn:
        offer = (
            await conn.execute(select(WaitlistOffer).where(WaitlistOffer.id == uuid.UUID(offer_id)))
        ).one()
    assert offer.entry_id == uuid.UUID(fitting["id"])
    assert await table_count(db, "freed_slots") == 2


async def test_an_entry_committed_while_a_cancel_waits_is_offered_its_slot(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    """The cancel has begun (its transaction is open, waiting for the therapist's lock) when the
    entry commits: the check made by the cancel's last statement sees the entry, so the slot is
    recorded and offered. A check made before the cancel's transaction (with the caller, say) would
    have missed it."""
    if db.writer.dialect.name != "postgresql":
        pytest.skip("SQLite runs one write at a time: an entry commits wholly before or after")
    session_id = await booked_session(client, waiting, monday(1))
    async with db.writer.connect() as blocker:
        await blocker.begin()
        await blocker.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("therapist", uuid.UUID(T1))}
        )
        cancelling = asyncio.ensure_future(cancel(client, waiting, session_id))
        # Until the cancel waits for the lock the blocker holds (no time-based wait).
        while not await _waiting_for_advisory_lock(db):
            assert not cancelling.done(), (await cancelling).text
            await asyncio.sleep(0.01)
        entry = await add_entry(client, waiting)
        await blocker.rollback()
    r = await cancelling
    assert r.status_code == 200, r.text
    await freed.drain()
    async with db.read() as conn:
        offer = (await conn.execute(select(WaitlistOffer))).one()
    assert offer.entry_id == uuid.UUID(entry["id"])
    assert await table_count(db, "freed_slots") == 1


async def _waiting_for_advisory_lock(db: Database) -> bool:
    async with db.reader.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        return bool(waiting.scalar_one())
