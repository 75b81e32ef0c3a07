"""Builds the benchmark dataset: one practice group with years of session history (run as bench/dataset).

Everything goes through the project's own import path (`import_document`), reference data in one
document and sessions in weekly chunks, so the dataset obeys the same rules as a clinic's own import:
no overlapping sessions per therapist or per client (checked by the importer and, on PostgreSQL, by the
exclusion constraints). Ids are derived from numbers (`md5('therapist-7')::uuid`), so pgbench scripts can
pick random people in SQL.

Shape at scale 1: 500 therapists in 20 clinics (a fifth of them BCBAs), 5,000 clients (each with one
BCBA and two RBTs of their clinic), about 21 months of history and 3 months of future bookings
(≈ 1 M sessions), six-month authorizations, weekly hours, vacations.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time as clock
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from therapy_scheduler.config import Settings, normalize_database_url
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.migrations import upgrade
from therapy_scheduler.models import Session

console = Console(stderr=True)

ORG_ID = uuid.UUID("b0b0b0b0-0000-4000-8000-000000000001")
ORG_TZ = "America/New_York"
ADMIN_EMAIL = "admin@bench.example"
SCHEDULER_EMAIL = "scheduler@bench.example"
THERAPISTS_PER_CLINIC = 25
CLIENTS_PER_THERAPIST = 10
PAST_DAYS = 630
FUTURE_DAYS = 100
# Session slots (local start, minutes) of a working day: RBTs do 2-hour direct sessions, BCBAs 1-hour
# supervision / parent-training sessions.
RBT_SLOTS = [(time(8, 0), 120), (time(10, 15), 120), (time(13, 0), 120), (time(15, 15), 120)]
BCBA_SLOTS = [(time(h, m), 60) for h, m in ((8, 30), (9, 45), (11, 0), (13, 0), (14, 15), (15, 30))]
FIRST = ("Avery", "Blake", "Casey", "Dana", "Elliot", "Harper", "Jordan", "Logan", "Quinn", "Riley")
LAST = ("Abbott", "Baker", "Chen", "Diaz", "Evans", "Garcia", "Lopez", "Nguyen", "Patel", "Silva")


def person_id(kind: str, n: int) -> uuid.UUID:
    """The id of the n-th therapist/client/…: PostgreSQL computes the same with md5('kind-n')::uuid."""
    return uuid.UUID(hashlib.md5(f"{kind}-{n}".encode(), usedforsecurity=False).hexdigest())


@dataclass(frozen=True)
class Shape:
    therapists: int
    clients: int
    past_days: int = PAST_DAYS
    future_days: int = FUTURE_DAYS

    @classmethod
    def of(cls, *, scale: float, small: bool) -> Shape:
        therapists = 50 if small else max(THERAPISTS_PER_CLINIC, round(500 * scale))
        return cls(therapists=therapists, clients=therapists * CLIENTS_PER_THERAPIST)


@dataclass
class Therapist:
    n: int
    id: uuid.UUID
    clinic: int
    time_zone: str
    bcba: bool
    active_until: date
    vacation: set[date] = field(default_factory=set)
    caseload: list[int] = field(default_factory=list)


@dataclass
class Clinic:
    n: int
    id: uuid.UUID
    time_zone: str


class Group:
    """The practice group's people, built deterministically from a seed."""

    def __init__(self, shape: Shape, today: date, seed: int) -> None:
        self.shape = shape
        self.today = today
        self.first_day = today - timedelta(days=shape.past_days)
        self.last_day = today + timedelta(days=shape.future_days)
        rng = random.Random(seed)
        self.rng = rng
        clinic_count = max(1, shape.therapists // THERAPISTS_PER_CLINIC)
        self.clinics = [
            Clinic(k, person_id("clinic", k), "America/Chicago" if k % 4 == 3 else ORG_TZ)
            for k in range(clinic_count)
        ]
        self.therapists: list[Therapist] = []
        for n in range(shape.therapists):
            clinic = self.clinics[n % clinic_count]
            inactive = n % 50 == 49
            active_until = today - timedelta(days=180) if inactive else self.last_day
            t = Therapist(
                n, person_id("therapist", n), clinic.n, clinic.time_zone, n % 5 == 0, active_until
            )
            for _ in range(3):  # three vacation weeks over the two years
                start = self.first_day + timedelta(days=rng.randrange(shape.past_days + 90))
                t.vacation.update(start + timedelta(days=d) for d in range(7))
            self.therapists.append(t)
        self.client_clinic: list[int] = []
        self.client_active_until: list[date] = []
        by_clinic: dict[int, tuple[list[Therapist], list[Therapist]]] = defaultdict(
            lambda: ([], [])
        )
        for t in self.therapists:
            by_clinic[t.clinic][0 if t.bcba else 1].append(t)
        for c in range(shape.clients):
            clinic_n = c % clinic_count
            bcbas, rbts = by_clinic[clinic_n]
            team = [rng.choice(bcbas)] if bcbas else []
            team += rng.sample(rbts, min(2, len(rbts)))
            for t in team:
                t.caseload.append(c)
            self.client_clinic.append(clinic_n)
            self.client_active_until.append(
                today - timedelta(days=120) if c % 20 == 19 else self.last_day
            )

    def reference_document(self) -> dict[str, Any]:
        rng = self.rng
        org = {
            "id": ORG_ID,
            "name": "Bench Practice Group",
            "time_zone": ORG_TZ,
            "settings": {
                "hold_seconds_default": 300,
                "availability_policy": "block",
                "authorization_policy": "block",
                "buffer_minutes": 15,
                "default_service_code": "97153",
                "default_cancellation_policy": "standard",
                "cancellation_policies": [
                    {"name": "standard", "notice_hours": 24, "release_units_on_late_cancel": True},
                    {"name": "strict", "notice_hours": 48, "release_units_on_late_cancel": False},
                ],
            },
        }
        locations = [
            {
                "id": c.id,
                "organization_id": ORG_ID,
                "name": f"Clinic {c.n + 1}",
                "location_type": "clinic",
                "is_active": True,
            }
            for c in self.clinics
        ] + [
            {
                "id": person_id("location", 0),
                "organization_id": ORG_ID,
                "name": "Telehealth",
                "location_type": "telehealth",
                "is_active": True,
            }
        ]
        therapists = []
        for t in self.therapists:
            hours = ("08:00", "18:00") if not t.bcba else ("08:30", "17:00")
            therapists.append(
                {
                    "id": t.id,
                    "organization_id": ORG_ID,
                    "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "email": f"therapist{t.n}@bench.example",
                    "phone": f"+1-555-{t.n:07d}",
                    "credential": "BCBA" if t.bcba else "RBT",
                    "time_zone": t.time_zone,
                    "status": "active" if t.active_until >= self.last_day else "inactive",
                    "availability": [
                        {"weekday": d, "start": hours[0], "end": hours[1]}
                        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
                    ],
                    "time_off": _vacations(t.vacation),
                }
            )
        clients = []
        authorizations = []
        caseload: dict[int, list[uuid.UUID]] = defaultdict(list)
        for t in self.therapists:
            for c in t.caseload:
                caseload[c].append(t.id)
        for c in range(self.shape.clients):
            client_id = person_id("client", c)
            clients.append(
                {
                    "id": client_id,
                    "organization_id": ORG_ID,
                    "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "email": f"guardian{c}@family.example",
                    "date_of_birth": self.today - timedelta(days=rng.randint(730, 5000)),
                    "status": "active"
                    if self.client_active_until[c] >= self.last_day
                    else "inactive",
                    "therapist_ids": caseload[c],
                }
            )
            authorizations += self._authorizations(c, client_id)
        users = [
            {
                "id": person_id("user", 0),
                "organization_id": ORG_ID,
                "email": ADMIN_EMAIL,
                "full_name": "Bench Admin",
                "role": "admin",
            },
            {
                "id": person_id("user", 1),
                "organization_id": ORG_ID,
                "email": SCHEDULER_EMAIL,
                "full_name": "Bench Scheduler",
                "role": "scheduler",
            },
        ] + [
            {
                "id": person_id("therapist-user", t.n),
                "organization_id": ORG_ID,
                "email": f"therapist{t.n}@bench.example",
                "full_name": f"Therapist {t.n}",
                "role": "therapist",
                "therapist_id": t.id,
                "is_active": t.active_until >= self.last_day,
            }
            for t in self.therapists
        ]
        return {
            "organizations": [org],
            "locations": locations,
            "therapists": therapists,
            "clients": clients,
            "users": users,
            "authorizations": authorizations,
        }

    def authorization_periods(self) -> list[tuple[date, date]]:
        periods = []
        start = self.first_day
        while start <= self.last_day + timedelta(days=60):
            periods.append((start, start + timedelta(days=181)))
            start += timedelta(days=182)
        return periods

    def _authorizations(self, c: int, client_id: uuid.UUID) -> list[dict[str, Any]]:
        out = []
        for k, (start, end) in enumerate(self.authorization_periods()):
            current = start <= self.today <= end or start > self.today
            # A few current authorizations still await the payer: their sessions show conflicts.
            status = "pending" if c % 50 == 7 and current else "approved"
            # Past periods are sized close to use (some run out); current ones leave room to book.
            direct = self.rng.choice([360, 440, 520]) if not current else 900
            out.append(
                {
                    "id": person_id(f"authorization-{c}", k),
                    "client_id": client_id,
                    "number": f"AUTH-{c:06d}-{k:02d}",
                    "payer": self.rng.choice(["Blue Harbor Health", "Keystone Mutual", "Medicaid"]),
                    "start_date": start,
                    "end_date": end,
                    "status": status,
                    "services": [
                        {"service_code": "97153", "approved_units": direct, "unit_minutes": 15},
                        {"service_code": "97155", "approved_units": 160, "unit_minutes": 15},
                        {"service_code": "97156", "approved_units": 48, "unit_minutes": 15},
                    ],
                }
            )
        return out

    def session_days(self) -> Iterator[date]:
        day = self.first_day
        while day < self.last_day:
            yield day
            day += timedelta(days=1)

    def sessions_of_day(self, day: date, now: datetime) -> list[dict[str, Any]]:
        """Every session of one local day, with no overlap per therapist (one slot each) or client
        (a client's taken slots are remembered for the day)."""
        if day.weekday() >= 5:
            return []
        rng = self.rng
        future = day > self.today
        taken: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        periods = self.authorization_periods()
        period = next(k for k, (s, e) in enumerate(periods) if s <= day <= e)
        out = []
        for t in self.therapists:
            if day > t.active_until or day in t.vacation or not t.caseload:
                continue
            tz = ZoneInfo(t.time_zone)
            fill = 0.55 if future else 0.9
            for slot_start, minutes in BCBA_SLOTS if t.bcba else RBT_SLOTS:
                if rng.random() > fill:
                    continue
                start = datetime.combine(day, slot_start, tzinfo=tz).astimezone(UTC)
                end = start + timedelta(minutes=minutes)
                client = self._free_client(t, day, start, end, taken)
                if client is None:
                    continue
                taken[client].append((start, end))
                out.append(self._session(t, client, start, end, now, period))
        return out

    def _free_client(
        self,
        t: Therapist,
        day: date,
        start: datetime,
        end: datetime,
        taken: dict[int, list[tuple[datetime, datetime]]],
    ) -> int | None:
        for _ in range(4):
            c = self.rng.choice(t.caseload)
            if day > self.client_active_until[c]:
                continue
            if all(not (s < end and start < e) for s, e in taken[c]):
                return c
        return None

    def _session(
        self, t: Therapist, c: int, start: datetime, end: datetime, now: datetime, period: int
    ) -> dict[str, Any]:
        rng = self.rng
        if end <= now:
            status = rng.choices(["completed", "cancelled", "no_show"], [87, 9, 4])[0]
        elif start <= now:
            status = "in_progress"
        else:
            status = rng.choices(["scheduled", "cancelled"], [95, 5])[0]
        where = rng.random()
        if where < 0.65:
            location_type, location_id = "clinic", self.clinics[t.clinic].id
        elif where < 0.8:
            location_type, location_id = "telehealth", person_id("location", 0)
        else:
            location_type, location_id = "home", None
        service = ("97156" if rng.random() < 0.2 else "97155") if t.bcba else "97153"
        return {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "therapist_id": t.id,
            "client_id": person_id("client", c),
            "start_time": start,
            "end_time": end,
            "status": status,
            "location_type": location_type,
            "location_id": location_id,
            "service_code": service,
            "authorization_id": person_id(f"authorization-{c}", period),
            "notes": "Worked on manding and transitions; data in the binder."
            if rng.random() < 0.3 and status == "completed"
            else None,
        }


def _vacations(days: set[date]) -> list[dict[str, Any]]:
    """Consecutive vacation days as local [start, end) ranges."""
    ranges: list[dict[str, Any]] = []
    for day in sorted(days):
        begin = datetime.combine(day, time())
        if ranges and ranges[-1]["end"] == begin:
            ranges[-1]["end"] = begin + timedelta(days=1)
        else:
            ranges.append({"start": begin, "end": begin + timedelta(days=1)})
    return ranges


def _remove_sqlite(url: str) -> None:
    path = url.split(":///", 1)[1]
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


async def _prepare_database(url: str, reset: bool) -> None:
    """Create (or with `reset`, re-create) a PostgreSQL database; SQLite files are removed on reset."""
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        if reset:
            _remove_sqlite(url)
        return
    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    admin = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = (
                await conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                )
            ).first()
            if exists and reset:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def build(url: str, shape: Shape, *, seed: int, reset: bool) -> dict[str, Any]:
    await _prepare_database(url, reset)
    upgrade(url)
    settings = Settings(database_url=url)
    db = Database.from_settings(settings)
    started = clock.perf_counter()
    now = datetime.now(UTC)
    group = Group(shape, now.date(), seed)
    try:
        async with db.read() as conn:
            existing = (await conn.execute(select(func.count()).select_from(Session))).scalar_one()
        if existing:
            console.print(
                f"[red]error:[/red] the database already holds {existing:,} sessions; "
                "use --reset to rebuild it"
            )
            raise SystemExit(1)
        days = list(group.session_days())
        total_sessions = 0
        with Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:>10,} rows"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            ref_task = bar.add_task("reference data", total=6, rows=0)
            document = parse_document(group.reference_document())
            async with db.write() as conn:
                counts = await import_document(
                    conn, document, progress=lambda *_: bar.advance(ref_task, 0)
                )
            bar.update(ref_task, completed=6, rows=sum(counts.values()))
            week_task = bar.add_task("sessions (weeks)", total=(len(days) + 6) // 7, rows=0)
            for first in range(0, len(days), 7):
                chunk = [
                    s for day in days[first : first + 7] for s in group.sessions_of_day(day, now)
                ]
                if chunk:
                    async with db.write() as conn:
                        await import_document(conn, parse_document({"sessions": chunk}))
                total_sessions += len(chunk)
                bar.update(week_task, advance=1, rows=total_sessions)
        console.print("analyzing…")
        await _analyze(url)
    finally:
        await db.dispose()
    return {
        "therapists": shape.therapists,
        "clients": shape.clients,
        "sessions": total_sessions,
        "first_day": group.first_day.isoformat(),
        "last_day": group.last_day.isoformat(),
        "seconds": round(clock.perf_counter() - started, 1),
    }


async def _analyze(url: str) -> None:
    url = normalize_database_url(url)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text("VACUUM ANALYZE" if not url.startswith("sqlite") else "ANALYZE")
            )
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/dataset", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/ts_bench",
        help="PostgreSQL (created if missing) or sqlite:///path URL",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies people and sessions")
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick mode: 50 therapists, 500 clients, ~100 k sessions",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reset", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args(argv)
    shape = Shape.of(scale=args.scale, small=args.small)
    console.print(
        f"building {shape.therapists:,} therapists, {shape.clients:,} clients, "
        f"{shape.past_days + shape.future_days} days of sessions into {args.database_url}"
    )
    summary = asyncio.run(build(args.database_url, shape, seed=args.seed, reset=args.reset))
    console.print(
        f"[green]done[/green] {summary['sessions']:,} sessions in {summary['seconds']} s "
        f"({summary['first_day']} → {summary['last_day']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
