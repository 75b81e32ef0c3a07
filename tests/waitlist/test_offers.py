"""Offers (docs/WAITLIST.md) on SQLite and PostgreSQL: a cancellation offers the freed slot to the best
fitting entry as a hold with the offer TTL; accept books it; decline and expiry pass it on; a crash
between COMMIT and matching loses nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from tests.booking.conftest import hold_body, hold_ok, monday, table_count, time_off_day, utc
from tests.fixtures import C1, C3, T1, T2, Clinic
from tests.waitlist.conftest import add_entry, booked_session, cancel
from therapy_scheduler.calendar import freed
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import (
    FreedSlot,
    Hold,
    HoldOccurrence,
    Session,
    WaitlistOffer,
    WebhookEvent,
)
from therapy_scheduler.waitlist.offers import expire_lapsed, run_once


async def offer_row(db: Database, offer_id: str) -> Any:
    async with db.read() as conn:
        return (
            await conn.execute(select(WaitlistOffer).where(WaitlistOffer.id == uuid.UUID(offer_id)))
        ).one()


async def hold_of(db: Database, hold_id: uuid.UUID) -> Any:
    async with db.read() as conn:
        hold = (await conn.execute(select(Hold).where(Hold.id == hold_id))).one()
        held = (
            await conn.execute(select(HoldOccurrence).where(HoldOccurrence.hold_id == hold_id))
        ).all()
    return hold, held


async def test_cancel_offers_the_freed_slot_as_a_hold(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    entry = await add_entry(client, waiting)
    session_id = await booked_session(client, waiting, day)
    before = datetime.now(UTC)
    r = await cancel(client, waiting, session_id)
    assert r.status_code == 200, r.text
    offer_id = r.json()["waitlist_offer_id"]
    assert offer_id is not None
    offer = await offer_row(db, offer_id)
    assert offer.status == "open"
    assert offer.entry_id == uuid.UUID(entry["id"])
    assert offer.therapist_id == uuid.UUID(T1)
    assert offer.client_id == uuid.UUID(C1)
    assert offer.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(day, "13:00")
    assert offer.end_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(day, "14:00")
    # The hold lasts the organization's offer TTL (default 24 h) and reserves A1's units.
    hold, held = await hold_of(db, offer.hold_id)
    assert hold.status == "active"
    assert (
        timedelta(hours=23, minutes=59) < hold.expires_at - before < timedelta(hours=24, minutes=1)
    )
    assert offer.expires_at == hold.expires_at
    assert [(o.active, o.units) for o in held] == [(True, 4)]
    assert held[0].authorization_id is not None

    shown = (await client.get(f"/waitlist/{entry['id']}", headers=waiting.headers("admin"))).json()
    assert shown["data"]["open_offer_id"] == offer_id
    board = (await client.get("/waitlist/offers", headers=waiting.headers("scheduler"))).json()
    assert board["waiting"] == 1
    assert [o["id"] for o in board["offers"]] == [offer_id]
    # The slot is taken while the clinic calls the family.
    taken = await client.post(
        "/sessions/hold",
        json=hold_body(day, "13:00", "14:00", client=C3),
        headers=waiting.headers("scheduler"),
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "THERAPIST_HOLD_CONFLICT"
    metrics = (await client.get("/metrics")).text
    assert 'therapy_scheduler_waitlist_offers_total{event="created"} 1.0' in metrics


async def test_accept_books_the_session(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    entry = await add_entry(client, waiting)
    offer_id = (await cancel(client, waiting, await booked_session(client, waiting, day))).json()[
        "waitlist_offer_id"
    ]
    r = await client.post(
        f"/waitlist/offers/{offer_id}/accept", headers=waiting.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["offer"]["status"] == "accepted"
    assert body["session"]["client_id"] == C1
    assert body["session"]["status"] == "scheduled"
    assert body["offer"]["session_id"] == body["session"]["id"]
    shown = (await client.get(f"/waitlist/{entry['id']}", headers=waiting.headers("admin"))).json()
    assert shown["data"]["status"] == "booked"
    again = await client.post(
        f"/waitlist/offers/{offer_id}/accept", headers=waiting.headers("scheduler")
    )
    assert again.status_code == 409
    assert again.json()["code"] == "OFFER_NOT_OPEN"
    async with db.read() as conn:
        sessions = (
            await conn.execute(
                select(Session.client_id, Session.status).where(
                    Session.id == uuid.UUID(body["session"]["id"])
                )
            )
        ).all()
    assert [(s.client_id, s.status) for s in sessions] == [(uuid.UUID(C1), "scheduled")]
    denied = await client.post(
        f"/waitlist/offers/{offer_id}/decline", headers=waiting.headers("therapist")
    )
    assert denied.status_code == 403


async def test_priority_then_waiting_time_and_decline_passes_it_on(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    first_come = await add_entry(client, waiting, priority=5)
    urgent = await add_entry(client, waiting, client_id=C3, therapist_ids=None, priority=5)
    # Same priority: the one waiting longer comes first.
    offer_id = (await cancel(client, waiting, await booked_session(client, waiting, day))).json()[
        "waitlist_offer_id"
    ]
    assert (await offer_row(db, offer_id)).entry_id == uuid.UUID(first_come["id"])
    r = await client.post(
        f"/waitlist/offers/{offer_id}/decline", headers=waiting.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    assert r.json()["offer"]["status"] == "declined"
    await freed.drain()
    async with db.read() as conn:
        offers = (
            await conn.execute(select(WaitlistOffer).order_by(WaitlistOffer.created_at))
        ).all()
    assert [(o.entry_id, o.status) for o in offers] == [
        (uuid.UUID(first_come["id"]), "declined"),
        (uuid.UUID(urgent["id"]), "open"),  # C3 is on T1's caseload (no therapist named)
    ]
    # The declining entry keeps waiting, without an offer.
    shown = (
        await client.get(f"/waitlist/{first_come['id']}", headers=waiting.headers("admin"))
    ).json()
    assert shown["data"]["status"] == "waiting"
    assert shown["data"]["open_offer_id"] is None


async def test_expiry_passes_the_slot_to_the_next_entry(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    first = await add_entry(client, waiting, priority=50)
    second = await add_entry(client, waiting, client_id=C3, therapist_ids=[T1], priority=1)
    offer_id = (await cancel(client, waiting, await booked_session(client, waiting, day))).json()[
        "waitlist_offer_id"
    ]
    offer = await offer_row(db, offer_id)
    assert offer.entry_id == uuid.UUID(first["id"])
    later = offer.expires_at + timedelta(seconds=1)
    await run_once(db, None, later)
    expired = await offer_row(db, offer_id)
    assert expired.status == "expired"
    hold, _ = await hold_of(db, offer.hold_id)
    assert hold.status == "expired"
    async with db.read() as conn:
        current = (
            await conn.execute(select(WaitlistOffer).where(WaitlistOffer.status == "open"))
        ).one()
    assert current.entry_id == uuid.UUID(second["id"])
    late = await client.post(
        f"/waitlist/offers/{offer_id}/accept", headers=waiting.headers("scheduler")
    )
    assert late.status_code == 410
    assert late.json()["code"] == "OFFER_EXPIRED"


async def test_no_waiting_entries_means_no_offer(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    r = await cancel(client, waiting, await booked_session(client, waiting, monday(1)))
    assert r.json()["waitlist_offer_id"] is None
    # Nobody waits: the cancel writes no outbox row at all, so nothing is left to match.
    assert await table_count(db, "freed_slots") == 0
    assert await table_count(db, "waitlist_offers") == 0


async def test_entry_that_does_not_fit_gets_nothing(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    await add_entry(client, waiting, windows=[{"weekday": 0, "start": "15:00", "end": "17:00"}])
    await add_entry(client, waiting, client_id=C3, therapist_ids=[T2])
    await add_entry(client, waiting, duration_minutes=90)
    r = await cancel(client, waiting, await booked_session(client, waiting, monday(1)))
    assert r.json()["waitlist_offer_id"] is None
    assert await table_count(db, "waitlist_offers") == 0


async def test_a_sub_range_of_a_longer_gap_is_offered(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    await add_entry(client, waiting, duration_minutes=30, windows=[
        {"weekday": 0, "start": "13:30", "end": "15:00"}
    ])  # fmt: skip
    offer_id = (
        await cancel(client, waiting, await booked_session(client, waiting, day, "13:00", "15:00"))
    ).json()["waitlist_offer_id"]
    offer = await offer_row(db, offer_id)
    assert offer.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(day, "13:30")
    assert offer.end_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(day, "14:00")


async def test_a_crash_after_commit_loses_nothing(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    entry = await add_entry(client, waiting)
    session_id = await booked_session(client, waiting, monday(1))
    freed.unregister(db)  # as if the process died right after the cancel's COMMIT
    r = await cancel(client, waiting, session_id)
    assert r.json()["waitlist_offer_id"] is None
    assert await table_count(db, "freed_slots", "processed_at IS NULL") == 1
    await run_once(db, None, datetime.now(UTC))  # the periodic job, in any process
    async with db.read() as conn:
        offer = (await conn.execute(select(WaitlistOffer))).one()
        row = (await conn.execute(select(FreedSlot))).one()
    assert offer.entry_id == uuid.UUID(entry["id"])
    assert row.offer_id == offer.id
    assert row.processed_at is not None


async def test_released_hold_and_removed_time_off_free_slots(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    held = await hold_ok(client, waiting, hold_body(day, "13:00", "14:00", client=C3))
    entry = await add_entry(client, waiting)
    r = await client.delete(
        f"/sessions/hold/{held['hold_key']}", headers=waiting.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    await freed.drain()
    async with db.read() as conn:
        causes = (await conn.execute(select(FreedSlot.cause))).scalars().all()
        offer = (await conn.execute(select(WaitlistOffer))).one()
    assert causes == ["release"]
    assert offer.entry_id == uuid.UUID(entry["id"])


async def test_matches_show_candidates_without_holding(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    entry = await add_entry(client, waiting)
    await add_entry(client, waiting, client_id=C3, therapist_ids=[T2])
    params = {"start": utc(day, "13:00"), "end": utc(day, "15:00"), "therapist_id": T1}
    r = await client.get("/waitlist/matches", params=params, headers=waiting.headers("scheduler"))
    assert r.status_code == 200, r.text
    assert [(m["entry"]["id"], m["start_time"]) for m in r.json()["data"]] == [
        (entry["id"], utc(day, "13:00"))
    ]
    assert await table_count(db, "holds") == 0
    bad = await client.get(
        "/waitlist/matches",
        params={**params, "end": params["start"]},
        headers=waiting.headers("scheduler"),
    )
    assert bad.status_code == 400
    assert "end" in bad.text
    missing = await client.get(
        "/waitlist/matches", params={"start": params["start"]}, headers=waiting.headers("admin")
    )
    assert missing.status_code == 400
    assert "end" in missing.text


async def test_open_offer_blocks_removal(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    entry = await add_entry(client, waiting)
    await cancel(client, waiting, await booked_session(client, waiting, monday(1)))
    r = await client.delete(f"/waitlist/{entry['id']}", headers=waiting.headers("scheduler"))
    assert r.status_code == 409
    assert r.json()["code"] == "ENTRY_HAS_OPEN_OFFER"
    async with db.write() as conn:
        await conn.execute(update(WaitlistOffer).values(status="declined"))
    await expire_lapsed(db, datetime.now(UTC))  # nothing open: nothing to do
    r = await client.delete(f"/waitlist/{entry['id']}", headers=waiting.headers("scheduler"))
    assert r.status_code == 200


async def test_reschedule_frees_the_old_time(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    day = monday(1)
    entry = await add_entry(client, waiting)
    session_id = await booked_session(client, waiting, day)
    r = await client.post(
        f"/sessions/{session_id}/reschedule",
        json={
            "start_time": f"{day.isoformat()}T15:00:00",
            "end_time": f"{day.isoformat()}T16:00:00",
            "time_zone": "America/New_York",
        },
        headers=waiting.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    await freed.drain()
    async with db.read() as conn:
        row = (await conn.execute(select(FreedSlot).where(FreedSlot.cause == "reschedule"))).one()
        offer = (await conn.execute(select(WaitlistOffer))).one()
    assert row.offer_id == offer.id
    assert offer.entry_id == uuid.UUID(entry["id"])
    assert offer.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(day, "13:00")


async def test_removed_time_off_frees_working_time(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    off = time_off_day()  # a Wednesday T1 has off, in week 3
    entry = await add_entry(
        client, waiting, windows=[{"weekday": 2, "start": "10:00", "end": "11:00"}]
    )
    headers = waiting.headers("admin")
    listed = await client.get(
        f"/admin/therapists/{T1}/time-off",
        params={"start_date": off.isoformat(), "end_date": off.isoformat()},
        headers=headers,
    )
    assert listed.status_code == 200, listed.text
    (time_off,) = listed.json()["data"]
    r = await client.delete(f"/admin/therapists/{T1}/time-off/{time_off['id']}", headers=headers)
    assert r.status_code == 200, r.text
    await freed.drain()
    async with db.read() as conn:
        offer = (await conn.execute(select(WaitlistOffer))).one()
    assert offer.entry_id == uuid.UUID(entry["id"])
    assert offer.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") == utc(off, "10:00")


async def test_the_job_deletes_outbox_rows_matched_a_week_ago(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    # Someone waits (for other hours), so the freed slot is recorded and matched to nobody.
    await add_entry(client, waiting, windows=[{"weekday": 0, "start": "15:00", "end": "17:00"}])
    await cancel(client, waiting, await booked_session(client, waiting, monday(1)))
    assert await table_count(db, "freed_slots", "processed_at IS NOT NULL") == 1
    await run_once(db, None, datetime.now(UTC) + timedelta(days=6))
    assert await table_count(db, "freed_slots") == 1
    await run_once(db, None, datetime.now(UTC) + timedelta(days=8))
    assert await table_count(db, "freed_slots") == 0


async def _offer_events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(WebhookEvent.event_type, WebhookEvent.payload)
                .where(WebhookEvent.event_type.like("waitlist.%"))
                .order_by(WebhookEvent.occurred_at, WebhookEvent.event_type)
            )
        ).all()
    return [(r.event_type, r.payload["data"]) for r in rows]


async def test_offers_write_their_webhook_events_with_ids_only(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    """waitlist.offer_created / _accepted / _expired go to the webhook outbox in the offer's own
    transaction (docs/WEBHOOKS.md), carrying ids only."""
    day = monday(1)
    first = await add_entry(client, waiting, priority=50)
    second = await add_entry(client, waiting, client_id=C3, therapist_ids=[T1], priority=1)
    offer_id = (await cancel(client, waiting, await booked_session(client, waiting, day))).json()[
        "waitlist_offer_id"
    ]
    offer = await offer_row(db, offer_id)
    created = await _offer_events(db)
    assert created == [
        (
            "waitlist.offer_created",
            {
                "offer_id": offer_id,
                "entry_id": first["id"],
                "therapist_id": T1,
                "client_id": C1,
                "hold_id": str(offer.hold_id),
            },
        )
    ]
    # Expiry: the first offer expires (its hold with it), the slot goes to the second entry.
    await run_once(db, None, offer.expires_at + timedelta(seconds=1))
    events = await _offer_events(db)
    assert [t for t, _ in events] == [
        "waitlist.offer_created",
        "waitlist.offer_expired",
        "waitlist.offer_created",
    ]
    assert events[1][1]["offer_id"] == offer_id
    second_offer = events[2][1]
    assert second_offer["entry_id"] == second["id"]
    async with db.read() as conn:
        expired_holds = (
            await conn.execute(
                select(WebhookEvent.payload).where(WebhookEvent.event_type == "hold.expired")
            )
        ).all()
    assert [p.payload["data"]["hold_id"] for p in expired_holds] == [str(offer.hold_id)]
    accepted = await client.post(
        f"/waitlist/offers/{second_offer['offer_id']}/accept",
        headers=waiting.headers("scheduler"),
    )
    assert accepted.status_code == 200, accepted.text
    kind, data = (await _offer_events(db))[-1]
    assert kind == "waitlist.offer_accepted"
    assert data == {
        "offer_id": second_offer["offer_id"],
        "entry_id": second["id"],
        "therapist_id": T1,
        "client_id": C3,
        "session_id": accepted.json()["session"]["id"],
    }
