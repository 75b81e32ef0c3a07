"""The free-slot engine (booking/slots.py) under the supervision overlap and the weekly caps, on SQLite
and PostgreSQL: every slot it offers (`POST /suggest-alternative-times`, the `alternatives` of a refusal)
is one a hold then takes, and what a hold would refuse is not offered.

The day of the supervision tests: RBT T2 delivers 97153 to C1 from 10:00 to 12:00 (New York); T1 and
T5 are BCBAs, T6 an RBT (tests/booking/test_supervision.py). A1 authorizes C1 100 units of 97153 and 8
of 97155.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.booking.conftest import (
    NY,
    book,
    hold,
    hold_ok,
    monday,
    set_org_settings,
    today_ny,
    utc,
)
from tests.booking.test_forecast import capped, next_fall_back, set_a1
from tests.booking.test_suggest import counting, suggest
from tests.booking.test_supervision import T5, T6, _staff, body, direct
from tests.fixtures import C1, T1, T2, Clinic
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import HoldOccurrence


@pytest.fixture
async def clinic(db: Database, booking: Clinic) -> Clinic:
    """The booking clinic with a second BCBA (T5) and a second RBT (T6), as in test_supervision."""
    doc = {"therapists": [_staff(T5, "Bo Second", "BCBA"), _staff(T6, "Rae Third", "RBT")]}
    async with db.write() as conn:
        await import_document(conn, parse_document(doc))
    return booking


def offered(r: httpx.Response) -> list[tuple[str, str | None]]:
    """(local start, supervises) of each slot."""
    assert r.status_code == 200, r.text
    return [(s["local_start_time"][11:], s["supervises"]) for s in r.json()["slots"]]


async def held_supervises(db: Database, therapist: str, start: str) -> str | None:
    async with db.read() as conn:
        value = (
            await conn.execute(
                select(HoldOccurrence.supervises).where(
                    HoldOccurrence.therapist_id == uuid.UUID(therapist),
                    HoldOccurrence.start_time == datetime.fromisoformat(start),
                    HoldOccurrence.active.is_(True),
                )
            )
        ).scalar_one()
    return value


async def each_is_held(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    slots: list[dict[str, Any]],
    *,
    therapist: str,
    code: str,
    client_id: str = C1,
) -> None:
    """Hold every slot on its own (then release it): each succeeds, and the hold supervises what
    the slot said it would."""
    assert slots
    for slot in slots:
        held = await hold_ok(
            client,
            clinic,
            {
                "session": {
                    "therapist_id": therapist,
                    "client_id": client_id,
                    "service_code": code,
                    "start_time": slot["start_time"],
                    "end_time": slot["end_time"],
                },
                "time_zone": "America/New_York",
                "hold_seconds": 60,
            },
        )
        assert held["warnings"] == [], (slot, held["warnings"])
        assert await held_supervises(db, therapist, slot["start_time"]) == slot.get("supervises")
        r = await client.delete(
            f"/sessions/hold/{held['hold_key']}", headers=clinic.headers("scheduler")
        )
        assert r.status_code == 200, r.text


def one_day(day: date, start: str = "09:00", end: str = "17:00") -> dict[str, str]:
    return {"start_time": f"{day.isoformat()}T{start}", "end_time": f"{day.isoformat()}T{end}"}


# Supervision


async def test_97155_slots_lie_within_the_97153_and_are_held_as_supervision(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, clinic, day)
    ask: dict[str, Any] = {
        "therapist_id": T1,
        "service_code": "97155",
        "duration_minutes": 30,
        "limit": 50,
    }
    r = await suggest(client, clinic, **ask, **one_day(day), supervising_only=True)
    assert offered(r) == [(t, "97153") for t in ("10:00", "10:30", "11:00", "11:30")]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97155")
    # Without `supervising_only` the client's free time is offered too, as standalone 97155s;
    # nothing sticks out of the 97153 (09:45 or 11:45 would).
    r = await suggest(client, clinic, **ask, **one_day(day, "09:00", "13:00"))
    assert offered(r) == [
        ("09:00", None),
        ("09:30", None),
        ("10:00", "97153"),
        ("10:30", "97153"),
        ("11:00", "97153"),
        ("11:30", "97153"),
        ("12:00", None),
        ("12:30", None),
    ]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97155")
    r = await suggest(client, clinic, **{**ask, "limit": 1}, **one_day(day, "09:45", "12:15"))
    assert offered(r) == [("10:00", "97153")]


async def test_a_held_97153_is_supervised_like_a_session(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    await hold_ok(client, clinic, body(day, "13:00", "14:00", T6, "97153"))
    r = await suggest(
        client,
        clinic,
        therapist_id=T5,
        service_code="97155",
        duration_minutes=45,
        supervising_only=True,
        **one_day(day),
    )
    assert offered(r) == [("13:00", "97153")]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T5, code="97155")


async def test_an_already_supervised_97153_offers_no_second_supervisor(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, clinic, day)
    await book(client, clinic, body(day, "10:30", "11:00", T5, "97155"))  # T5 supervises then
    ask: dict[str, Any] = {
        "therapist_id": T1,
        "service_code": "97155",
        "duration_minutes": 30,
        "limit": 50,
    }
    r = await suggest(client, clinic, **ask, **one_day(day), supervising_only=True)
    assert offered(r) == [(t, "97153") for t in ("10:00", "11:00", "11:30")]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97155")
    # A supervising hold (not yet confirmed) counts the same.
    await hold_ok(client, clinic, body(day, "11:00", "11:45", T5, "97155"))
    r = await suggest(client, clinic, **ask, **one_day(day), supervising_only=True)
    assert offered(r) == [("10:00", "97153")]
    r = await suggest(client, clinic, **ask, **one_day(day, "10:00", "12:00"))
    assert offered(r) == [("10:00", "97153")]  # and no standalone 97155 inside the 97153


async def test_an_rbt_gets_no_supervising_slot(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, clinic, day)
    ask: dict[str, Any] = {
        "therapist_id": T6,
        "service_code": "97155",
        "duration_minutes": 60,
        "limit": 50,
    }
    r = await suggest(client, clinic, **ask, **one_day(day), supervising_only=True)
    assert offered(r) == []
    # Standalone, outside the 97153, the RBT's 97155 is an ordinary session.
    r = await suggest(client, clinic, **ask, **one_day(day, "08:00", "14:00"))
    assert offered(r) == [("08:00", None), ("09:00", None), ("12:00", None), ("13:00", None)]
    await each_is_held(client, clinic, db, r.json()["slots"][:2], therapist=T6, code="97155")


async def test_ordinary_codes_still_find_the_client_busy(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, clinic, day)
    ask: dict[str, Any] = {"therapist_id": T5, "duration_minutes": 30, "limit": 50}
    r = await suggest(client, clinic, **ask, **one_day(day, "09:00", "13:00"), service_code="97153")
    assert offered(r) == [(t, None) for t in ("09:00", "09:30", "12:00", "12:30")]
    # With no pairs configured a 97155 is ordinary too.
    await set_org_settings(db, supervision_pairs=[])
    r = await suggest(client, clinic, **ask, **one_day(day, "09:00", "13:00"), service_code="97155")
    assert offered(r) == [(t, None) for t in ("09:00", "09:30", "12:00", "12:30")]
    r = await suggest(
        client, clinic, **ask, **one_day(day), service_code="97155", supervising_only=True
    )
    assert offered(r) == []
    await set_org_settings(db, supervision_pairs=[["97155", "97153"]])

    # A supervision left alone (its 97153 cancelled) blocks the client, except for a 97153 that
    # contains it, as a hold decides.
    await book(client, clinic, body(day, "10:30", "11:00", T1, "97155"))
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": supervised, "reason": "client_illness"},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    window = one_day(day, "10:15", "12:00")
    r = await suggest(client, clinic, **ask, **window, service_code="97153")
    assert offered(r) == [(t, None) for t in ("10:30", "11:00", "11:30")]  # 10:15 sticks out
    await each_is_held(client, clinic, db, r.json()["slots"][:1], therapist=T5, code="97153")
    r = await suggest(
        client, clinic, **{**ask, "duration_minutes": 60}, **window, service_code="97153"
    )
    assert offered(r)[:1] == [("10:15", None)]  # 10:15-11:15 contains 10:30-11:00
    await each_is_held(client, clinic, db, r.json()["slots"][:1], therapist=T5, code="97153")
    await set_org_settings(db, authorization_policy="warn")  # A1 does not authorize 97151
    r = await suggest(client, clinic, **ask, **window, service_code="97151")
    assert offered(r) == [(t, None) for t in ("11:00", "11:30")]


async def test_a_refused_supervision_offers_supervising_alternatives(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, clinic, day)
    r = await hold(client, clinic, body(day, "11:45", "12:15", T1, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    alternatives = r.json()["details"]["alternatives"]
    # The three closest to 11:45 that lie within the 97153, in time order.
    assert alternatives == [
        {"start_time": utc(day, "10:30"), "end_time": utc(day, "11:00")},
        {"start_time": utc(day, "11:00"), "end_time": utc(day, "11:30")},
        {"start_time": utc(day, "11:30"), "end_time": utc(day, "12:00")},
    ]
    slots = [{**a, "supervises": "97153"} for a in alternatives]
    await each_is_held(client, clinic, db, slots, therapist=T1, code="97155")
    # An RBT can supervise at no time: no alternatives.
    r = await hold(client, clinic, body(day, "10:30", "11:00", T6, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISOR_CREDENTIAL_REQUIRED"), r.text
    assert r.json()["details"]["alternatives"] == []
    # A second supervisor's conflict: the alternatives avoid the first one's half hour; supervising
    # (10:30, 11:30) or standalone (10:00, before the 97153), whichever is closer.
    await book(client, clinic, body(day, "11:00", "11:30", T5, "97155"))
    r = await hold(client, clinic, body(day, "11:00", "11:30", T1, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), r.text
    starts = [a["start_time"] for a in r.json()["details"]["alternatives"]]
    assert starts == [utc(day, "10:00"), utc(day, "10:30"), utc(day, "11:30")]


# Weekly caps


async def test_a_full_week_offers_no_slot(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await set_a1(db, services=capped(weekly_cap_units=4))  # one hour of 97153 a week
    day = monday(1)
    await book(client, clinic, body(day, "09:00", "10:00", T1, "97153"))
    window = {"start_date": day.isoformat(), "end_date": (day + timedelta(days=8)).isoformat()}
    r = await suggest(client, clinic, **window, limit=2)
    next_week = day + timedelta(weeks=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [
        utc(next_week, "09:00"),
        utc(next_week, "10:00"),
    ]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97153")
    # Under `warn` the week's slots are offered (the hold then warns).
    await set_org_settings(db, authorization_policy="warn")
    r = await suggest(client, clinic, **window, limit=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [utc(day, "10:00")]


async def test_a_cap_in_hours_leaves_room_for_shorter_slots(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await set_a1(db, services=capped(weekly_cap_hours=1.5))
    day = monday(1)
    await book(client, clinic, body(day, "09:00", "10:00", T1, "97153"))
    window = {"start_date": day.isoformat(), "end_date": (day + timedelta(days=8)).isoformat()}
    r = await suggest(client, clinic, **window, limit=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [utc(day + timedelta(weeks=1), "09:00")]
    r = await suggest(client, clinic, **window, duration_minutes=30, limit=3)
    assert [s["start_time"] for s in r.json()["slots"]] == [
        utc(day, t) for t in ("10:00", "10:30", "11:00")
    ]
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97153")
    # A hold of half an hour fills the week: then the next week again.
    await hold_ok(client, clinic, body(day, "15:00", "15:30", T1, "97153"))
    r = await suggest(client, clinic, **window, duration_minutes=30, limit=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [utc(day + timedelta(weeks=1), "09:00")]


async def test_the_cap_week_across_the_november_clock_change(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """The Sunday of the change, 23:00-23:45 EST (04:00Z Monday), belongs to the week ending that
    Sunday: with 3 of its 4 units spent, only a quarter hour fits in that week."""
    change = next_fall_back(NY, today_ny())  # a Sunday
    week = change - timedelta(days=6)  # its Monday
    await set_a1(db, services=capped(weekly_cap_units=4))
    await set_org_settings(db, availability_policy="off")
    await book(client, clinic, body(change, "23:00", "23:45", T1, "97153"))
    await set_org_settings(db, availability_policy="block")
    window = {"start_date": week.isoformat(), "end_date": (change + timedelta(days=1)).isoformat()}
    r = await suggest(client, clinic, **window, limit=1)
    after = change + timedelta(days=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [utc(after, "09:00")]
    assert r.json()["slots"][0]["start_time"].endswith("T14:00:00Z")  # EST now
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97153")
    r = await suggest(client, clinic, **window, duration_minutes=15, limit=1)
    assert [s["start_time"] for s in r.json()["slots"]] == [utc(week, "09:00")]
    assert r.json()["slots"][0]["start_time"].endswith("T13:00:00Z")  # EDT still
    await each_is_held(client, clinic, db, r.json()["slots"], therapist=T1, code="97153")


# Queries


async def test_caps_and_supervision_keep_a_constant_number_of_queries(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """One more read for the weeks' spending (a capped authorization), one for the supervisor's
    credential (a supervising code); the same for a day as for a quarter."""
    day = monday(1)
    for weeks in range(3):
        await book(client, clinic, body(monday(weeks), "10:00", "12:00", T2, "97153"))

    async def reads(**ask: Any) -> list[int]:
        counts = []
        for last in (day, day + timedelta(days=90)):
            with counting(db) as statements:
                r = await suggest(
                    client, clinic, start_date=day.isoformat(), end_date=last.isoformat(), **ask
                )
            assert r.status_code == 200, r.text
            counts.append(len(statements))
        return counts

    plain = await reads(limit=50, duration_minutes=30)
    supervising = await reads(limit=50, duration_minutes=30, service_code="97155")
    await set_a1(db, services=capped(weekly_cap_units=40))
    with_cap = await reads(limit=50, duration_minutes=30)
    assert plain[0] == plain[1]
    assert supervising == [plain[0] + 1, plain[0] + 1]
    assert with_cap == [plain[0] + 1, plain[0] + 1]
