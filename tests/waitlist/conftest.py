"""Waitlist fixtures: the booking clinic (tests/booking/conftest.py) with authorizations on "warn", so
that C3 (on T1's caseload, no authorization) can hold the session whose cancellation frees a slot,
while C1's offers reserve units of A1."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from tests.booking.conftest import book, booking, hold_body, monday, set_org_settings
from tests.conftest import make_settings
from tests.fixtures import C1, C3, T1, Clinic
from therapy_scheduler.calendar import freed
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database

__all__ = ["booking"]

MONDAY = 0


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The cancel's wait for its offer is bounded by time; these tests assert the offer it returns,
    # so the bound is generous enough for a loaded machine (docs/DECISIONS.md).
    return make_settings(database_url, waitlist_settle_seconds=30)


@pytest.fixture
async def waiting(booking: Clinic, db: Database) -> Clinic:
    await set_org_settings(db, authorization_policy="warn")
    return booking


def entry_body(client: str = C1, **extra: Any) -> dict[str, Any]:
    """C1 waits for an hour of 97153 with T1, Monday afternoons (New York)."""
    body: dict[str, Any] = {
        "client_id": client,
        "service_code": "97153",
        "duration_minutes": 60,
        "therapist_ids": [T1],
        "windows": [{"weekday": MONDAY, "start": "12:00", "end": "17:00"}],
        "time_zone": "America/New_York",
        "earliest_date": monday(0).isoformat(),
        "priority": 10,
        "note": "Prefers afternoons",
    }
    body.update(extra)
    return body


async def add_entry(
    client: httpx.AsyncClient, clinic: Clinic, who: str = "scheduler", **extra: Any
) -> dict[str, Any]:
    r = await client.post("/waitlist", json=entry_body(**extra), headers=clinic.headers(who))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["data"]
    return result


async def booked_session(
    client: httpx.AsyncClient, clinic: Clinic, day: date, start: str = "13:00", end: str = "14:00"
) -> str:
    """A session of T1 with C3 (the slot a cancellation will free)."""
    confirmed = await book(client, clinic, hold_body(day, start, end, client=C3))
    return str(confirmed["session"]["id"])


async def cancel(client: httpx.AsyncClient, clinic: Clinic, session_id: str) -> httpx.Response:
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": session_id, "reason": "client_illness"},
        headers=clinic.headers("scheduler"),
    )
    await freed.drain()
    return r
