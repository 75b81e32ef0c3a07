"""Race tests: several uvicorn processes on one database, many concurrent clients hammering overlapping
slots of the same therapists and clients (and the last units of two authorizations) over HTTP.

Afterwards: no overlapping non-cancelled sessions or live holds per therapist or client, every 2xx is
exactly one row, and no authorization spends more units than it approved.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.api_processes import server_processes
from tests.booking.conftest import UNITS_97153, UNITS_97155, local, monday, set_org_settings
from tests.conftest import PGBOUNCER_URLS
from tests.fixtures import A1, A2, C1, C2, T1, T2, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold, HoldOccurrence, Session

# (therapist, client, service): T1 and T2 share client C1; T2 also sees C2, whose authorization A2 has
# 20 units of 97153; A1 has only 8 units of 97155.
PAIRS = [(T1, C1, "97153"), (T1, C1, "97155"), (T2, C1, "97153"), (T2, C2, "97153")]
STARTS = [f"{h:02d}:{m:02d}" for h in range(9, 16) for m in (0, 30)]
ALLOWED_CONFLICTS = {
    "THERAPIST_CONFLICT",
    "CLIENT_CONFLICT",
    "THERAPIST_HOLD_CONFLICT",
    "CLIENT_HOLD_CONFLICT",
    "AUTHORIZATION_EXHAUSTED",
    "OUTSIDE_AVAILABILITY",
}


@pytest.fixture
def servers(
    request: pytest.FixtureRequest, database_url: str, booking: Clinic
) -> Iterator[list[str]]:
    """`count` uvicorn processes serving the test database (its clinic already seeded)."""
    count: int = getattr(request, "param", 2)
    env = {
        "THERAPY_SCHEDULER_DATABASE_URL": database_url,
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "8",
        "THERAPY_SCHEDULER_HOLD_PURGE_INTERVAL_SECONDS": "1",
        # TEST_BACKENDS=pgbouncer: the processes reach the database through PgBouncer.
        "THERAPY_SCHEDULER_DB_PGBOUNCER": str(database_url in PGBOUNCER_URLS).lower(),
    }
    with server_processes([env] * count) as urls:
        yield urls


@dataclass
class Tally:
    holds: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: list[str] = field(default_factory=list)

    def note(self, action: str, r: httpx.Response) -> None:
        code = r.json().get("code", "ok") if r.status_code != 200 else "ok"
        self.statuses[f"{action}:{r.status_code}:{code}"] += 1
        if r.status_code >= 500 or (r.status_code == 409 and code not in ALLOWED_CONFLICTS):
            self.failures.append(f"{action} {r.status_code} {r.text[:300]}")


async def _worker(
    seed: int, url: str, clinic: Clinic, iterations: int, tally: Tally, hold_seconds: int
) -> None:
    rng = random.Random(seed)
    day = monday(1)
    headers = clinic.headers(rng.choice(["scheduler", "admin"]))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(iterations):
            therapist, client, code = rng.choice(PAIRS)
            start = rng.choice(STARTS)
            minutes = rng.choice([60, 90])
            body = {
                "session": {
                    "therapist_id": therapist,
                    "client_id": client,
                    "start_time": local(day, start),
                    "service_code": code,
                },
                "duration_minutes": minutes,
                "time_zone": "America/New_York",
                "hold_seconds": hold_seconds,
            }
            r = await http.post("/sessions/hold", json=body)
            tally.note("hold", r)
            if r.status_code != 200:
                continue
            held = r.json()
            tally.holds.add(held["hold_key"])
            roll = rng.random()
            if roll < 0.15:
                tally.note("release", await http.delete(f"/sessions/hold/{held['hold_key']}"))
                continue
            if roll < 0.25:
                continue  # abandoned: it expires on its own
            first = held["occurrences"][0]
            r = await http.post(
                "/sessions/confirm",
                json={"hold_key": held["hold_key"], "session": first},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            tally.note("confirm", r)
            if r.status_code != 200:
                continue
            tally.sessions.update(s["id"] for s in r.json()["occurrences"])
            if rng.random() < 0.2:
                session_id = r.json()["session"]["id"]
                c = await http.post("/sessions/cancel", json={"session_id": session_id})
                tally.note("cancel", c)
                if c.status_code == 200:
                    tally.cancelled.update(c.json()["cancelled_session_ids"])


async def _hammer(
    urls: list[str], clinic: Clinic, workers: int, iterations: int, hold_seconds: int
) -> Tally:
    tally = Tally()
    await asyncio.gather(
        *(
            _worker(i, urls[i % len(urls)], clinic, iterations, tally, hold_seconds)
            for i in range(workers)
        )
    )
    return tally


def _assert_disjoint(rows: list[tuple[Any, datetime, datetime]], what: str) -> None:
    by_person: dict[Any, list[tuple[datetime, datetime]]] = defaultdict(list)
    for person, start, end in rows:
        by_person[person].append((start, end))
    for person, ranges in by_person.items():
        ranges.sort()
        for (_, end_a), (start_b, _) in pairwise(ranges):
            assert end_a <= start_b, f"overlapping {what} for {person}"


async def _check_invariants(db: Database, tally: Tally, fixture_ids: set[str]) -> None:
    now = datetime.now(UTC)
    async with db.read() as conn:
        sessions = (
            await conn.execute(
                select(
                    Session.id,
                    Session.therapist_id,
                    Session.client_id,
                    Session.start_time,
                    Session.end_time,
                    Session.status,
                )
            )
        ).all()
        live_holds = (
            await conn.execute(
                select(
                    HoldOccurrence.therapist_id,
                    HoldOccurrence.client_id,
                    HoldOccurrence.start_time,
                    HoldOccurrence.end_time,
                ).where(HoldOccurrence.active.is_(True), HoldOccurrence.expires_at > now)
            )
        ).all()
        spent = {
            (str(r.authorization_id), r.service_code): int(r.units)
            for r in await conn.execute(
                select(
                    Session.authorization_id,
                    Session.service_code,
                    func.sum(Session.units).label("units"),
                )
                .where(Session.consumes_units.is_(True))
                .group_by(Session.authorization_id, Session.service_code)
            )
        }
        reserved = {
            (str(r.authorization_id), r.service_code): int(r.units)
            for r in await conn.execute(
                select(
                    HoldOccurrence.authorization_id,
                    HoldOccurrence.service_code,
                    func.sum(HoldOccurrence.units).label("units"),
                )
                .where(HoldOccurrence.active.is_(True), HoldOccurrence.expires_at > now)
                .group_by(HoldOccurrence.authorization_id, HoldOccurrence.service_code)
            )
        }
        hold_count = int(
            (await conn.execute(select(func.count()).select_from(HoldOccurrence))).scalar_one()
        )
    created = {str(s.id) for s in sessions} - fixture_ids
    assert created == tally.sessions, "every 2xx confirm is exactly one session row"
    assert hold_count == len(tally.holds), "every 2xx hold is exactly one hold row"
    assert {str(s.id) for s in sessions if s.status == "cancelled"} >= tally.cancelled
    busy = [s for s in sessions if s.status != "cancelled"]
    for who in ("therapist_id", "client_id"):
        _assert_disjoint(
            [(getattr(s, who), s.start_time, s.end_time) for s in busy]
            + [(getattr(h, who), h.start_time, h.end_time) for h in live_holds],
            f"sessions/holds by {who}",
        )
    for (auth, code), approved in (
        ((A1, "97153"), UNITS_97153),
        ((A1, "97155"), UNITS_97155),
        ((A2, "97153"), 20),
    ):
        used = spent.get((auth, code), 0) + reserved.get((auth, code), 0)
        assert used <= approved, f"{auth}/{code}: {used} units used of {approved}"


async def _fixture_session_ids(db: Database) -> set[str]:
    async with db.read() as conn:
        return {str(i) for i in (await conn.execute(select(Session.id))).scalars()}


async def test_concurrent_bookings_never_double_book(
    servers: list[str], booking: Clinic, db: Database
) -> None:
    # Every client's time stays disjoint here: the supervision overlap (97155 over 97153, allowed
    # by default) is switched off; tests/booking/test_supervision.py races it.
    await set_org_settings(db, supervision_pairs=[])
    fixture_ids = await _fixture_session_ids(db)
    tally = await _hammer(servers, booking, workers=12, iterations=6, hold_seconds=600)
    print(dict(tally.statuses))  # visible with -s: how much contention there was
    assert tally.failures == []
    assert tally.statuses["hold:200:ok"] >= 1
    await _check_invariants(db, tally, fixture_ids)
    # The last units of A1/97155 went to at most two one-hour sessions (or one 90-minute one).


@pytest.mark.slow
@pytest.mark.parametrize("servers", [3], indirect=True)
async def test_long_race_with_expiring_holds(
    servers: list[str], booking: Clinic, db: Database
) -> None:
    # Every client's time stays disjoint here: the supervision overlap (97155 over 97153, allowed
    # by default) is switched off; tests/booking/test_supervision.py races it.
    await set_org_settings(db, supervision_pairs=[])
    fixture_ids = await _fixture_session_ids(db)
    tally = await _hammer(servers, booking, workers=32, iterations=10, hold_seconds=30)
    await asyncio.sleep(31)  # let the abandoned holds expire, then race again over their slots
    second = await _hammer(servers, booking, workers=32, iterations=10, hold_seconds=30)
    tally.holds |= second.holds
    tally.sessions |= second.sessions
    tally.cancelled |= second.cancelled
    tally.failures += second.failures
    assert tally.failures == []
    await _check_invariants(db, tally, fixture_ids)


@pytest.mark.parametrize("servers", [2], indirect=True)
async def test_hold_limit_holds_under_concurrency(
    servers: list[str], booking: Clinic, db: Database
) -> None:
    """A scheduler fires 8 holds at once through two server processes, for two therapist/client pairs
    that share no booking lock, with a limit of 1 active hold: in every round exactly one succeeds,
    whatever the interleaving (the limit is checked under a per-user lock)."""
    await set_org_settings(
        db, max_active_holds_staff=1, availability_policy="off", authorization_policy="off"
    )
    headers = booking.headers("scheduler")
    pairs = [(T1, C1), (T2, C2)]

    async def one(http: httpx.AsyncClient, i: int) -> httpx.Response:
        therapist, client = pairs[i % 2]
        body = {
            "session": {
                "therapist_id": therapist,
                "client_id": client,
                "start_time": local(monday(1 + i), "13:00"),
            },
            "duration_minutes": 60,
            "time_zone": "America/New_York",
        }
        return await http.post(f"{servers[i % 2]}/sessions/hold", json=body)

    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        for _ in range(4):
            responses = await asyncio.gather(*(one(http, i) for i in range(8)))
            outcomes = sorted((r.status_code, r.json().get("code", "ok")) for r in responses)
            assert outcomes == [(200, "ok")] + [(409, "HOLD_LIMIT_REACHED")] * 7, outcomes
            async with db.read() as conn:
                active = (
                    await conn.execute(
                        select(func.count()).select_from(Hold).where(Hold.status == "active")
                    )
                ).scalar_one()
            assert active == 1
            held = next(r.json()["hold_key"] for r in responses if r.status_code == 200)
            assert (await http.delete(f"{servers[0]}/sessions/hold/{held}")).status_code == 200


async def test_weekly_cap_holds_under_concurrency(
    servers: list[str], booking: Clinic, db: Database
) -> None:
    """8 one-hour holds (4 units each) for one client in one week, at different times with two
    therapists, fired at once through two server processes, against a weekly cap of 4 units: exactly
    one wins, the others get WEEKLY_CAP_EXCEEDED (the client's lock orders them)."""
    from tests.booking.test_forecast import capped, set_a1

    await set_org_settings(db, availability_policy="off")
    await set_a1(db, services=capped(weekly_cap_units=4))
    headers = booking.headers("scheduler")
    week = monday(1)

    async def one(http: httpx.AsyncClient, i: int) -> httpx.Response:
        day = week + timedelta(days=i % 4)
        body = {
            "session": {
                "therapist_id": (T1, T2)[i % 2],
                "client_id": C1,
                "start_time": local(day, ("09:00", "11:00", "13:00", "15:00")[i // 2]),
            },
            "duration_minutes": 60,
            "time_zone": "America/New_York",
        }
        return await http.post(f"{servers[i % 2]}/sessions/hold", json=body)

    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        responses = await asyncio.gather(*(one(http, i) for i in range(8)))
    outcomes = sorted((r.status_code, r.json().get("code", "ok")) for r in responses)
    assert outcomes == [(200, "ok")] + [(409, "WEEKLY_CAP_EXCEEDED")] * 7, outcomes
    async with db.read() as conn:
        units = (
            await conn.execute(
                select(func.coalesce(func.sum(HoldOccurrence.units), 0)).where(
                    HoldOccurrence.active.is_(True)
                )
            )
        ).scalar_one()
    assert units == 4
