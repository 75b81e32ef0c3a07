"""Supervision overlap (docs/BOOKING.md "Supervision overlap") on SQLite and PostgreSQL: a BCBA's 97155
may lie within the client's 97153; nothing else may overlap for one client.

The day: RBT T2 delivers 97153 to C1 from 10:00 to 12:00 (New York); T1 and T5 are BCBAs, T6 an RBT.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tests.booking.conftest import (
    book,
    confirm_ok,
    hold,
    hold_body,
    hold_ok,
    monday,
    set_org_settings,
    table_count,
    utc,
)
from tests.booking.test_confirm import expire
from tests.booking.test_race import servers  # noqa: F401 - the fixture of the race tests
from tests.fixtures import C1, C3, ORG_A, T1, T2, Clinic
from therapy_scheduler.booking.purge import purge_once
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold, HoldOccurrence, Session, WebhookEvent

T5 = str(uuid.UUID(int=0xA205))
T6 = str(uuid.UUID(int=0xA206))
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def _staff(therapist_id: str, name: str, credential: str) -> dict[str, Any]:
    return {
        "id": therapist_id,
        "organization_id": ORG_A,
        "full_name": name,
        "credential": credential,
        "time_zone": "America/New_York",
        "availability": [{"weekday": d, "start": "08:00", "end": "18:00"} for d in WEEKDAYS],
    }


@pytest.fixture
async def staff(db: Database, booking: Clinic) -> Clinic:
    """The booking clinic with a second BCBA (T5) and a second RBT (T6)."""
    doc = {"therapists": [_staff(T5, "Bo Second", "BCBA"), _staff(T6, "Rae Third", "RBT")]}
    async with db.write() as conn:
        await import_document(conn, parse_document(doc))
    return booking


def body(day: date, start: str, end: str, therapist: str, code: str) -> dict[str, Any]:
    return hold_body(
        day, start, end, therapist=therapist, session={"service_code": code}, hold_seconds=600
    )


async def direct(client: httpx.AsyncClient, clinic: Clinic, day: date) -> str:
    """T2's 97153 for C1, 10:00-12:00: its session id."""
    confirmed = await book(client, clinic, body(day, "10:00", "12:00", T2, "97153"))
    return str(confirmed["session"]["id"])


async def supervises_of(db: Database, session_id: str) -> str | None:
    async with db.read() as conn:
        value = (
            await conn.execute(
                select(Session.supervises).where(Session.id == uuid.UUID(session_id))
            )
        ).scalar_one()
    return value


async def on_the_day(db: Database, day: date) -> list[tuple[str, str | None]]:
    """(service, supervises) of C1's non-cancelled sessions on `day` (New York), by start."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(Session.service_code, Session.supervises)
            .where(
                Session.client_id == uuid.UUID(C1),
                Session.start_time >= datetime.fromisoformat(utc(day, "00:00")),
                Session.start_time < datetime.fromisoformat(utc(day, "23:59")),
                Session.status != "cancelled",
            )
            .order_by(Session.start_time)
        )
        return [(r.service_code, r.supervises) for r in rows]


async def test_bcba_97155_inside_97153_is_booked_as_supervision(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)
    confirmed = await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    supervising = str(confirmed["session"]["id"])
    assert await supervises_of(db, supervising) == "97153"
    assert await supervises_of(db, supervised) is None
    # The client still cannot be in anything else then, and T1 still not in two places.
    r = await hold(client, staff, body(day, "10:30", "11:00", T5, "97151"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), r.text
    other = hold_body(day, "10:45", "11:15", therapist=T1, client=C3, hold_seconds=600)
    r = await hold(client, staff, other)
    assert (r.status_code, r.json()["code"]) == (409, "THERAPIST_CONFLICT"), r.text


async def test_a_second_supervisor_over_the_same_session_conflicts(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, staff, day)
    await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    before = await table_count(db, "hold_occurrences")
    r = await hold(client, staff, body(day, "10:45", "11:15", T5, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), r.text
    assert r.json()["details"]["conflict"] == {
        "start_time": utc(day, "10:30"),
        "end_time": utc(day, "11:00"),
    }
    assert await table_count(db, "hold_occurrences") == before
    # Back to back with the first supervision is fine: one supervisor at a time.
    later = await book(client, staff, body(day, "11:00", "11:30", T5, "97155"))
    assert await supervises_of(db, str(later["session"]["id"])) == "97153"


@pytest.mark.parametrize(("start", "end"), [("09:45", "10:15"), ("11:30", "12:30")])
async def test_a_supervision_sticking_out_is_not_contained(
    client: httpx.AsyncClient, staff: Clinic, db: Database, start: str, end: str
) -> None:
    day = monday(1)
    await direct(client, staff, day)
    before = await table_count(db, "hold_occurrences")
    r = await hold(client, staff, body(day, start, end, T1, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    assert r.json()["details"]["conflict"] == {
        "start_time": utc(day, "10:00"),
        "end_time": utc(day, "12:00"),
    }
    assert r.json()["details"]["requested"] == {
        "start_time": utc(day, start),
        "end_time": utc(day, end),
    }
    assert await table_count(db, "hold_occurrences") == before


async def test_an_rbt_cannot_supervise(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, staff, day)
    r = await hold(client, staff, body(day, "10:30", "11:00", T6, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISOR_CREDENTIAL_REQUIRED"), r.text
    details = r.json()["details"]
    assert details["credential"] == "RBT"
    assert details["required"] == ["BCBA", "BCBA-D", "BCaBA"]
    assert details["supervised_service_code"] == "97153"
    # The same RBT's 97155 on its own (no 97153 then) is an ordinary session, as before.
    alone = await book(client, staff, body(day, "13:00", "13:30", T6, "97155"))
    assert await supervises_of(db, str(alone["session"]["id"])) is None


async def test_a_pair_not_listed_still_conflicts(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    await direct(client, staff, day)
    for code in ("97151", "97153", "97156"):
        r = await hold(client, staff, body(day, "10:30", "11:00", T1, code))
        assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), (code, r.text)
    # With no pairs configured, 97155 over 97153 is a double booking again.
    await set_org_settings(db, supervision_pairs=[])
    r = await hold(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), r.text


async def test_a_standalone_97155_is_ordinary(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    """Booked first, a 97155 supervises nothing: a 97153 booked around it later conflicts."""
    day = monday(1)
    first = await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    assert await supervises_of(db, str(first["session"]["id"])) is None
    r = await hold(client, staff, body(day, "10:00", "12:00", T2, "97153"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_CONFLICT"), r.text


async def test_holds_count_like_sessions(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    held_direct = await hold_ok(client, staff, body(day, "10:00", "12:00", T2, "97153"))
    held_supervision = await hold_ok(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    async with db.read() as conn:
        codes = dict(
            (
                await conn.execute(select(HoldOccurrence.service_code, HoldOccurrence.supervises))
            ).all()
        )
    assert codes == {"97153": None, "97155": "97153"}
    r = await hold(client, staff, body(day, "10:45", "11:15", T5, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "CLIENT_HOLD_CONFLICT"), r.text
    r = await hold(client, staff, body(day, "11:30", "12:30", T5, "97155"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    # Confirmed in either order, the sessions keep what the holds decided.
    supervising = await confirm_ok(client, staff, held_supervision)
    await confirm_ok(client, staff, held_direct)
    assert await supervises_of(db, str(supervising["session"]["id"])) == "97153"


async def test_cancelling_the_supervised_session_warns_and_reports(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)
    supervising = str(
        (await book(client, staff, body(day, "10:30", "11:00", T1, "97155")))["session"]["id"]
    )
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": supervised, "reason": "client_illness"},
        headers=staff.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert [(w["code"], w["session_ids"]) for w in r.json()["warnings"]] == [
        ("SUPERVISION_UNSUPPORTED", [supervising])
    ]
    async with db.read() as conn:
        status = (
            await conn.execute(select(Session.status).where(Session.id == uuid.UUID(supervising)))
        ).scalar_one()
    assert status == "scheduled"  # never cancelled silently

    params = {
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
        "therapist_ids": T1,
        "include_conflicts": "true",
    }
    r = await client.get(
        "/get-schedule-data-batch", params=params, headers=staff.headers("scheduler")
    )
    assert r.status_code == 200, r.text
    alone = [c for c in r.json()["data"]["conflicts"] if c["type"] == "supervision_unsupported"]
    assert [(c["session_ids"], c["client_id"], c["service_code"]) for c in alone] == [
        ([supervising], C1, "97153")
    ]

    # Reactivated, the 97153 contains the supervision again: no more conflict.
    r = await client.post(
        f"/sessions/{supervised}/reactivate", headers=staff.headers("scheduler"), json={}
    )
    assert r.status_code == 200, r.text
    r = await client.get(
        "/get-schedule-data-batch", params=params, headers=staff.headers("scheduler")
    )
    types = [c["type"] for c in r.json()["data"]["conflicts"]]
    assert "supervision_unsupported" not in types


async def test_an_ordinary_session_must_contain_the_supervision_it_overlaps(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    """After the 97153 is cancelled, a new 97153 may take the supervision in only by containing it."""
    day = monday(1)
    supervised = await direct(client, staff, day)
    await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": supervised, "reason": "client_illness"},
        headers=staff.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    r = await hold(client, staff, body(day, "10:45", "12:00", T2, "97153"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    await book(client, staff, body(day, "10:15", "11:45", T2, "97153"))


async def test_postgresql_constraints_admit_exactly_the_allowed_pair(
    db: Database, staff: Clinic
) -> None:
    """Rows written past the application (migration 0006): one ordinary row and one row supervising
    its code may overlap for a client; nothing else."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no exclusion constraints; the serialized booking check is the rule")
    day = monday(2)
    insert = text(
        "INSERT INTO sessions (id, organization_id, therapist_id, client_id, service_code, "
        "start_time, end_time, status, units, consumes_units, supervises, created_at, updated_at) "
        "VALUES (:id, :org, :therapist, :client, :code, :start, :end, 'scheduled', 0, false, "
        ":supervises, now(), now())"
    )

    async def write(start: str, end: str, therapist: str, code: str, sup: str | None) -> None:
        async with db.write() as conn:
            await conn.execute(
                insert,
                {
                    "id": uuid.uuid4(),
                    "org": uuid.UUID(ORG_A),
                    "therapist": uuid.UUID(therapist),
                    "client": uuid.UUID(C1),
                    "code": code,
                    "start": datetime.fromisoformat(utc(day, start)),
                    "end": datetime.fromisoformat(utc(day, end)),
                    "supervises": sup,
                },
            )

    await write("10:00", "12:00", T2, "97153", None)
    await write("10:30", "11:00", T1, "97155", "97153")
    refused = [
        ("10:45", "11:15", T5, "97155", "97153", "ex_sessions_client_overlap"),
        ("11:00", "11:30", T5, "97151", None, "ex_sessions_client_overlap"),
        ("11:00", "11:30", T5, "97155", "97151", "ex_sessions_client_supervision"),
        ("10:40", "10:50", T5, "97153", "97153", "ck_sessions_supervises_other_code"),
    ]
    for start, end, therapist, code, sup, name in refused:
        with pytest.raises(IntegrityError, match=name):
            await write(start, end, therapist, code, sup)
    assert await on_the_day(db, day) == [("97153", None), ("97155", "97153")]

    async with db.write() as conn:
        names = (
            (
                await conn.execute(
                    text(
                        "SELECT conname FROM pg_constraint WHERE conrelid = "
                        "'hold_occurrences'::regclass AND contype = 'x' ORDER BY conname"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert names == [
        "ex_hold_occurrences_client_overlap",
        "ex_hold_occurrences_client_supervision",
        "ex_hold_occurrences_therapist_overlap",
    ]


async def _race(urls: list[str], clinic: Clinic, bodies: list[dict[str, Any]]) -> list[Any]:
    """Each body held and confirmed at once, alternating between the server processes."""

    async def one(url: str, b: dict[str, Any]) -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            r = await c.post("/sessions/hold", json=b, headers=clinic.headers("scheduler"))
            if r.status_code != 200:
                return r.status_code, r.json()["code"]
            held = r.json()
            confirm = {
                "hold_key": held["hold_key"],
                "session": {
                    "start_time": held["occurrences"][0]["start_time"],
                    "end_time": held["occurrences"][0]["end_time"],
                },
            }
            r = await c.post("/sessions/confirm", json=confirm, headers=clinic.headers("scheduler"))
            return r.status_code, r.json().get("code", "ok")

    return list(await asyncio.gather(*(one(urls[i % len(urls)], b) for i, b in enumerate(bodies))))


@pytest.mark.parametrize("servers", [2], indirect=True)
async def test_racing_bookings_give_one_winner_each(
    servers: list[str],  # noqa: F811
    staff: Clinic,
    db: Database,
) -> None:
    day = monday(2)
    # Two 97153 for one client at the same time, by two therapists: exactly one wins.
    outcomes = await _race(
        servers,
        staff,
        [body(day, "10:00", "12:00", t, "97153") for t in (T2, T6, T2, T6)],
    )
    assert sorted(outcomes).count((200, "ok")) == 1, outcomes
    assert {o for o in outcomes if o != (200, "ok")} <= {
        (409, "CLIENT_CONFLICT"),
        (409, "CLIENT_HOLD_CONFLICT"),
        (409, "THERAPIST_CONFLICT"),
        (409, "THERAPIST_HOLD_CONFLICT"),
    }
    # Two BCBAs racing to supervise it: exactly one supervision.
    outcomes = await _race(
        servers,
        staff,
        [body(day, "10:30", "11:00", t, "97155") for t in (T1, T5, T1, T5)],
    )
    assert sorted(outcomes).count((200, "ok")) == 1, outcomes
    assert await on_the_day(db, day) == [("97153", None), ("97155", "97153")]


async def test_rescheduling_either_session(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)
    supervising = str(
        (await book(client, staff, body(day, "10:30", "11:00", T1, "97155")))["session"]["id"]
    )
    headers = staff.headers("scheduler")

    async def move(session_id: str, start: str) -> httpx.Response:
        return await client.post(
            f"/sessions/{session_id}/reschedule",
            json={"start_time": f"{day.isoformat()}T{start}:00", "time_zone": "America/New_York"},
            headers=headers,
        )

    # The 97153 moved so that it no longer contains the supervision → refused, nothing moved.
    r = await move(supervised, "10:45")
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    # Moved within the 97153, the 97155 still supervises; moved after it, it is an ordinary one.
    r = await move(supervising, "11:15")
    assert r.status_code == 200, r.text
    assert await supervises_of(db, supervising) == "97153"
    r = await move(supervising, "12:30")
    assert r.status_code == 200, r.text
    assert await supervises_of(db, supervising) is None
    # Back inside, then the 97153 moved away from it: the supervision stands alone, with a warning.
    assert (await move(supervising, "10:30")).status_code == 200
    assert await supervises_of(db, supervising) == "97153"
    r = await move(supervised, "14:00")
    assert r.status_code == 200, r.text
    assert [(w["code"], w.get("session_ids")) for w in r.json()["warnings"]] == [
        ("SUPERVISION_UNSUPPORTED", [supervising])
    ]
    assert await on_the_day(db, day) == [("97155", "97153"), ("97153", None)]


async def hold_id_of(db: Database, hold_key: str) -> str:
    async with db.read() as conn:
        value = (await conn.execute(select(Hold.id).where(Hold.hold_key == hold_key))).scalar_one()
    return str(value)


async def release(client: httpx.AsyncClient, clinic: Clinic, hold_key: str) -> httpx.Response:
    return await client.delete(f"/sessions/hold/{hold_key}", headers=clinic.headers("scheduler"))


async def alone_in_conflicts(client: httpx.AsyncClient, clinic: Clinic, day: date) -> list[str]:
    """The session ids include_conflicts reports as supervision_unsupported on `day`."""
    r = await client.get(
        "/get-schedule-data-batch",
        params={
            "start_date": day.isoformat(),
            "end_date": day.isoformat(),
            "therapist_ids": f"{T1},{T5}",
            "include_conflicts": "true",
        },
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    return [
        i
        for c in r.json()["data"]["conflicts"]
        if c["type"] == "supervision_unsupported"
        for i in c["session_ids"]
    ]


async def test_releasing_the_supervised_hold_warns_and_its_held_supervision_cannot_be_confirmed(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    held_direct = await hold_ok(client, staff, body(day, "10:00", "12:00", T2, "97153"))
    supervising = str(
        (await book(client, staff, body(day, "10:30", "11:00", T1, "97155")))["session"]["id"]
    )
    held_supervision = await hold_ok(client, staff, body(day, "11:00", "11:30", T5, "97155"))
    r = await release(client, staff, held_direct["hold_key"])
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [
        {
            "code": "SUPERVISION_UNSUPPORTED",
            "message": r.json()["warnings"][0]["message"],
            "session_ids": [supervising],
            "hold_ids": [await hold_id_of(db, held_supervision["hold_key"])],
        }
    ]
    assert "stands alone" in r.json()["warnings"][0]["message"]
    # Released again: nothing new to say.
    again = await release(client, staff, held_direct["hold_key"])
    assert (again.json()["already_released"], again.json()["warnings"]) == (True, [])
    # The booked supervision stays and is reported; the held one can no longer become a session.
    assert await supervises_of(db, supervising) == "97153"
    assert await alone_in_conflicts(client, staff, day) == [supervising]
    sessions = await table_count(db, "sessions")
    r = await client.post(
        "/sessions/confirm",
        json={
            "hold_key": held_supervision["hold_key"],
            "session": held_supervision["occurrences"][0],
        },
        headers=staff.headers("scheduler"),
    )
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    details = r.json()["details"]
    assert (details["reason"], details["supervised_service_code"], details["occurrence_index"]) == (
        "supervised_session_gone",
        "97153",
        0,
    )
    assert details["requested"] == {"start_time": utc(day, "11:00"), "end_time": utc(day, "11:30")}
    assert await table_count(db, "sessions") == sessions
    shown = await client.get(
        f"/sessions/hold/{held_supervision['hold_key']}", headers=staff.headers("scheduler")
    )
    assert shown.json()["status"] == "active"  # refused, nothing changed: it may be released
    r = await release(client, staff, held_supervision["hold_key"])
    assert (r.status_code, r.json()["warnings"]) == (200, [])
    # Held again without a 97153 there, the same time is an ordinary 97155.
    alone = await book(client, staff, body(day, "11:00", "11:30", T5, "97155"))
    assert await supervises_of(db, str(alone["session"]["id"])) is None


async def test_releasing_an_ordinary_hold_says_nothing(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    """A released reschedule hold of the 97153 leaves its supervision within the session it would have
    moved; a released hold with no supervision inside warns of nothing."""
    day = monday(1)
    supervised = await direct(client, staff, day)
    await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    moving = body(day, "10:15", "12:15", T2, "97153")
    moving["session"]["session_id"] = supervised
    held = await hold_ok(client, staff, moving)
    r = await release(client, staff, held["hold_key"])
    assert (r.status_code, r.json()["warnings"]) == (200, [])
    held = await hold_ok(client, staff, body(day, "14:00", "15:00", T2, "97153"))
    r = await release(client, staff, held["hold_key"])
    assert (r.status_code, r.json()["warnings"]) == (200, [])
    assert await alone_in_conflicts(client, staff, day) == []


async def test_a_supervision_held_before_its_session_was_cancelled_is_refused_until_it_is_booked_again(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)
    held = await hold_ok(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": supervised, "reason": "client_illness"},
        headers=staff.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert [(w["session_ids"], w["hold_ids"]) for w in r.json()["warnings"]] == [
        ([], [await hold_id_of(db, held["hold_key"])])
    ]
    confirm = {"hold_key": held["hold_key"], "session": held["occurrences"][0]}
    r = await client.post("/sessions/confirm", json=confirm, headers=staff.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    assert "no longer contains it" in r.json()["error"]
    # A 97153 booked around it again: the held supervision has its session back and is confirmed.
    await book(client, staff, body(day, "10:00", "11:30", T6, "97153"))
    confirmed = await confirm_ok(client, staff, held)
    assert await supervises_of(db, str(confirmed["session"]["id"])) == "97153"
    assert await alone_in_conflicts(client, staff, day) == []


async def test_a_lapsed_supervised_hold_leaves_its_supervision_reported(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    """Nobody is there to warn when the 97153's hold runs out: include_conflicts says it, the purge's
    hold.expired webhook tells other systems, and the held supervision cannot be confirmed."""
    day = monday(1)
    held_direct = await hold_ok(client, staff, body(day, "10:00", "12:00", T2, "97153"))
    supervising = str(
        (await book(client, staff, body(day, "10:30", "11:00", T1, "97155")))["session"]["id"]
    )
    held_supervision = await hold_ok(client, staff, body(day, "11:00", "11:30", T5, "97155"))
    await expire(db, held_direct["hold_key"])
    # Before the purge marks it, the lapsed hold already contains nothing.
    confirm = {
        "hold_key": held_supervision["hold_key"],
        "session": held_supervision["occurrences"][0],
    }
    r = await client.post("/sessions/confirm", json=confirm, headers=staff.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text
    result = await purge_once(db, datetime.now(UTC))
    assert result.expired == 1
    async with db.read() as conn:
        events = (
            (await conn.execute(select(WebhookEvent.event_type).order_by(WebhookEvent.seq)))
            .scalars()
            .all()
        )
    assert events[-1] == "hold.expired"
    assert await alone_in_conflicts(client, staff, day) == [supervising]
    r = await client.post("/sessions/confirm", json=confirm, headers=staff.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text


async def test_the_forecast_says_supervision_problems_in_words(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)

    async def summary(b: dict[str, Any]) -> list[str]:
        r = await client.post(
            "/sessions/hold", json={**b, "dry_run": True}, headers=staff.headers("scheduler")
        )
        assert r.status_code == 200, r.text
        lines: list[str] = r.json()["summary"]
        return lines

    assert await summary(body(day, "11:30", "12:30", T1, "97155")) == [
        "Occurrence 1 supervises the client's 97153 session but does not lie within it"
    ]
    r = await hold(client, staff, body(day, "11:30", "12:30", T1, "97155"))
    assert r.json()["details"]["reason"] == "not_within_supervised"
    assert await summary(body(day, "10:30", "11:00", T6, "97155")) == [
        "Occurrence 1 would supervise the client's 97153 session, which only a BCBA or BCaBA may "
        "do (the therapist is an RBT)"
    ]
    # An ordinary 97153 cutting through a supervision left alone by its cancelled 97153.
    await book(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": supervised, "reason": "client_illness"},
        headers=staff.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert await summary(body(day, "10:45", "12:00", T6, "97153")) == [
        "Occurrence 1 overlaps the client's 97155 supervision without containing it"
    ]


async def test_moving_the_97153_away_from_a_held_supervision_warns_and_refuses_its_confirm(
    client: httpx.AsyncClient, staff: Clinic, db: Database
) -> None:
    day = monday(1)
    supervised = await direct(client, staff, day)
    held = await hold_ok(client, staff, body(day, "10:30", "11:00", T1, "97155"))
    r = await client.post(
        f"/sessions/{supervised}/reschedule",
        json={"start_time": f"{day.isoformat()}T14:00:00", "time_zone": "America/New_York"},
        headers=staff.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert [(w["code"], w["session_ids"], w["hold_ids"]) for w in r.json()["warnings"]] == [
        ("SUPERVISION_UNSUPPORTED", [], [await hold_id_of(db, held["hold_key"])])
    ]
    confirm = {"hold_key": held["hold_key"], "session": held["occurrences"][0]}
    r = await client.post("/sessions/confirm", json=confirm, headers=staff.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (409, "SUPERVISION_NOT_CONTAINED"), r.text


@pytest.mark.parametrize("servers", [2], indirect=True)
async def test_a_release_racing_the_confirm_of_its_supervision_always_names_what_is_left(
    servers: list[str],  # noqa: F811
    staff: Clinic,
    db: Database,
) -> None:
    """Released and confirmed at once in two processes: either the release came first and the
    supervision is refused, or the confirm came first and the release names the new session; never
    a booked supervision that the release's warning missed."""
    headers = staff.headers("scheduler")
    for offset in range(4):
        day = monday(2) + timedelta(days=offset)
        async with httpx.AsyncClient(base_url=servers[0], timeout=60) as c:
            r = await c.post(
                "/sessions/hold", json=body(day, "10:00", "12:00", T2, "97153"), headers=headers
            )
            direct_key = r.json()["hold_key"]
            r = await c.post(
                "/sessions/hold", json=body(day, "10:30", "11:00", T1, "97155"), headers=headers
            )
            held = r.json()
        supervision_hold = await hold_id_of(db, held["hold_key"])

        confirm = {"hold_key": held["hold_key"], "session": held["occurrences"][0]}
        released, confirmed = await asyncio.gather(
            _call(servers[0], "DELETE", f"/sessions/hold/{direct_key}", headers),
            _call(servers[1], "POST", "/sessions/confirm", headers, confirm),
        )
        assert released.status_code == 200, released.text
        (warning,) = released.json()["warnings"]
        if confirmed.status_code == 200:
            assert (warning["session_ids"], warning["hold_ids"]) == (
                [confirmed.json()["session"]["id"]],
                [],
            )
        else:
            assert confirmed.json()["code"] == "SUPERVISION_NOT_CONTAINED", confirmed.text
            assert (warning["session_ids"], warning["hold_ids"]) == ([], [supervision_hold])


async def _call(
    url: str, method: str, path: str, headers: dict[str, str], json: Any = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        return await c.request(method, path, json=json, headers=headers)
