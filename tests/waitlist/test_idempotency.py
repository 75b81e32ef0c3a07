"""`Idempotency-Key` on the waitlist's POSTs (docs/WAITLIST.md), on SQLite and PostgreSQL: a retry with
the same key replays the first answer and changes nothing more; the same key with another body (or
for another offer) → 422 IDEMPOTENCY_KEY_REUSED; a malformed key → 400 naming the header."""

from __future__ import annotations

import httpx

from tests.booking.conftest import monday
from tests.conftest import count_rows
from tests.fixtures import Clinic
from tests.support import assert_error
from tests.waitlist.conftest import booked_session, cancel, entry_body
from therapy_scheduler.infra.db import Database


def _keyed(clinic: Clinic, key: str) -> dict[str, str]:
    return {**clinic.headers("scheduler"), "Idempotency-Key": key}


async def _offer(client: httpx.AsyncClient, clinic: Clinic, week: int, priority: int) -> str:
    """An open offer: an entry for `week`'s Monday, then a cancelled session there."""
    day = monday(week)
    r = await client.post(
        "/waitlist",
        json=entry_body(
            earliest_date=day.isoformat(), latest_date=day.isoformat(), priority=priority
        ),
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 201, r.text
    cancelled = await cancel(client, clinic, await booked_session(client, clinic, day))
    offer_id = cancelled.json()["waitlist_offer_id"]
    assert offer_id is not None
    return str(offer_id)


async def test_create_entry_replays_and_refuses_another_body(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    body = entry_body()
    first = await client.post("/waitlist", json=body, headers=_keyed(waiting, "entry-1"))
    assert first.status_code == 201, first.text
    again = await client.post("/waitlist", json=body, headers=_keyed(waiting, "entry-1"))
    assert again.status_code == 201
    assert again.headers["idempotent-replay"] == "true"
    assert "idempotent-replay" not in first.headers
    assert again.json()["data"] == first.json()["data"]
    assert await count_rows(db, "waitlist_entries") == 1
    audited = await count_rows(db, "audit_events")

    other = await client.post(
        "/waitlist", json={**body, "priority": 99}, headers=_keyed(waiting, "entry-1")
    )
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # Without a key, or with a new one, a second entry is made.
    fresh = await client.post("/waitlist", json=body, headers=_keyed(waiting, "entry-2"))
    assert fresh.status_code == 201
    assert fresh.json()["data"]["id"] != first.json()["data"]["id"]
    assert await count_rows(db, "waitlist_entries") == 2
    assert await count_rows(db, "audit_events") == audited + 1


async def test_a_refused_create_is_replayed_as_refused(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    body = entry_body(client="00000000-0000-4000-8000-00000000dead")
    first = await client.post("/waitlist", json=body, headers=_keyed(waiting, "nobody"))
    assert_error(first, 404, "NOT_FOUND")
    again = await client.post("/waitlist", json=body, headers=_keyed(waiting, "nobody"))
    assert_error(again, 404, "NOT_FOUND")
    assert again.headers["idempotent-replay"] == "true"
    assert await count_rows(db, "waitlist_entries") == 0


async def test_malformed_key_is_a_400_naming_the_header_and_changes_nothing(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    idempotency_rows = await count_rows(db, "idempotency_records")
    for key in ("has space", "x" * 256, "tab\tinside"):
        r = await client.post(
            "/waitlist",
            json=entry_body(),
            headers={**waiting.headers("scheduler"), "Idempotency-Key": key},
        )
        body = assert_error(r, 400, "VALIDATION_ERROR")
        # The header is named ("header.Idempotency-Key" when its length fails the declaration).
        fields = [f["field"] for f in body["details"]["fields"]]
        assert fields in (["Idempotency-Key"], ["header.Idempotency-Key"]), body
    assert await count_rows(db, "waitlist_entries") == 0
    assert await count_rows(db, "idempotency_records") == idempotency_rows


async def test_accept_replays_the_booking_and_books_once(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    offer_id = await _offer(client, waiting, 1, 50)
    other_offer = await _offer(client, waiting, 2, 40)
    url = f"/waitlist/offers/{offer_id}/accept"
    first = await client.post(url, headers=_keyed(waiting, "accept-1"))
    assert first.status_code == 200, first.text
    sessions = await count_rows(db, "sessions")
    again = await client.post(url, headers=_keyed(waiting, "accept-1"))
    assert again.status_code == 200
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == first.json()
    assert first.json()["offer"]["status"] == "accepted"
    assert await count_rows(db, "sessions") == sessions
    # Without the key the accept runs again, and the offer is no longer open.
    assert_error(
        await client.post(url, headers=waiting.headers("scheduler")), 409, "OFFER_NOT_OPEN"
    )
    # The same key for another offer is another request.
    reused = await client.post(
        f"/waitlist/offers/{other_offer}/accept", headers=_keyed(waiting, "accept-1")
    )
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await count_rows(db, "sessions") == sessions


async def test_decline_replays_and_passes_the_slot_on_once(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    offer_id = await _offer(client, waiting, 1, 50)
    url = f"/waitlist/offers/{offer_id}/decline"
    first = await client.post(url, headers=_keyed(waiting, "decline-1"))
    assert first.status_code == 200, first.text
    assert first.json()["offer"]["status"] == "declined"
    audited = await count_rows(db, "audit_events")
    holds = await count_rows(db, "holds")
    again = await client.post(url, headers=_keyed(waiting, "decline-1"))
    assert again.status_code == 200
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == first.json()
    assert await count_rows(db, "audit_events") == audited
    assert await count_rows(db, "holds") == holds
