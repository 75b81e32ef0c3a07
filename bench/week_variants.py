"""Identical-answer checks for get-schedule-data-batch beyond the bench's own paths.

    # a copy of the dataset where every conflict type appears (never the shared datasets):
    .venv/bin/python -m bench.week_variants perturb --database-url URL_OF_A_COPY --zone Asia/Tokyo
    # digests of many kinds of request, as admin and as therapists, old code and new:
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.week_variants digest --database-url URL \\
        --out old.jsonl --seed 11
    .venv/bin/python -m bench.week_variants digest --database-url URL --out new.jsonl --seed 11
    cmp old.jsonl new.jsonl

`perturb` (deterministic: rows are picked by their position in id order): the organization's zone
(sessions then fall on other local days than in UTC), buffer 60 minutes, Tuesday/Thursday hours end
at 13:00 and Friday's begin at 10:15, half the time off becomes extra hours, time off around every
9th session and extra hours around every 13th, every 50th session without authorization, a third
of cancelled and no-show sessions consuming units, authorizations cut short, started late, expired,
with half their units or without service 97153.

`digest`: per seed, `--count` bench schedule_week paths as admin and as the therapist of the first
id, and `--count // 2` of each of eight variants (own id, no therapist filter over two weeks, other
time zones, offsets, client filters, conflicts without availability). One line per answer: path,
role, status and the SHA-256 of the body without timings (as `bench.inprocess --dump`); the
conflict counts by type go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from bench.build_dataset import person_id
from bench.harness import _discover, scenario_paths
from bench.inprocess import _digest
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url
from therapy_scheduler.models import (
    Authorization,
    AuthorizationService,
    AvailabilityWindow,
    Location,
    LocationTravel,
    Organization,
    Session,
    TimeOff,
)


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def perturb(url: str, zone: str) -> None:
    engine = create_async_engine(normalize_database_url(url))
    async with engine.begin() as c:
        org = (await c.execute(select(Organization.settings))).one()
        settings = {
            **org.settings,
            "buffer_minutes": 60,
            # Travel longer than the break between some places: insufficient_travel_time.
            "travel_policy": "warn",
            "travel_defaults": [
                {"location_types": ["clinic", "home"], "minutes": 90},
                {"location_types": ["home", "school"], "minutes": 75},
            ],
        }
        await c.execute(update(Organization).values(settings=settings, time_zone=zone))
        windows = AvailabilityWindow
        await c.execute(
            update(windows)
            .where(windows.weekday.in_([1, 3]), windows.start_local < time(13))
            .values(end_local=time(13))
        )
        await c.execute(
            update(windows)
            .where(windows.weekday == 4, windows.end_local > time(10, 15))
            .values(start_local=time(10, 15))
        )
        offs = sorted(
            (await c.execute(select(TimeOff.id).where(TimeOff.kind == "time_off"))).scalars()
        )
        for ids in _chunks(offs[::2]):
            await c.execute(update(TimeOff).where(TimeOff.id.in_(ids)).values(kind="extra"))
        sessions = (
            await c.execute(
                select(
                    Session.id,
                    Session.organization_id,
                    Session.therapist_id,
                    Session.start_time,
                    Session.end_time,
                    Session.status,
                ).order_by(Session.id)
            )
        ).all()
        added = []
        for i, s in enumerate(sessions):
            if i % 9 == 0:
                tag, kind, before, after = (
                    9,
                    "time_off",
                    timedelta(minutes=30),
                    timedelta(minutes=30),
                )
            elif i % 13 == 0:
                tag, kind, before, after = 13, "extra", timedelta(hours=1), timedelta(hours=2)
            else:
                continue
            added.append(
                {
                    "id": uuid.UUID(int=(i + 1) << 64 | tag),
                    "organization_id": s.organization_id,
                    "therapist_id": s.therapist_id,
                    "kind": kind,
                    "start_time": s.start_time - before,
                    "end_time": s.end_time + after,
                }
            )
        for part in _chunks(added, 2000):
            await c.execute(insert(TimeOff), part)
        without = [s.id for i, s in enumerate(sessions) if i % 50 == 7]
        for ids in _chunks(without):
            await c.execute(
                update(Session).where(Session.id.in_(ids)).values(authorization_id=None)
            )
        consuming = [
            s.id
            for i, s in enumerate(sessions)
            if s.status in ("cancelled", "no_show") and i % 3 == 0
        ]
        for ids in _chunks(consuming):
            await c.execute(update(Session).where(Session.id.in_(ids)).values(consumes_units=True))
        auths = (
            await c.execute(
                select(Authorization.id, Authorization.start_date, Authorization.end_date).order_by(
                    Authorization.id
                )
            )
        ).all()
        for i, a in enumerate(auths):
            values: dict[str, Any] = {}
            if i % 7 == 0 and (a.end_date - a.start_date).days > 45:
                values["end_date"] = a.end_date - timedelta(days=40)
            if i % 13 == 0 and (a.end_date - a.start_date).days > 65:
                values["start_date"] = a.start_date + timedelta(days=20)
            if i % 11 == 0:
                values["status"] = "expired"
            if values:
                await c.execute(
                    update(Authorization).where(Authorization.id == a.id).values(**values)
                )
        services = AuthorizationService
        for ids in _chunks([a.id for i, a in enumerate(auths) if i % 5 == 1]):
            await c.execute(
                update(services)
                .where(services.authorization_id.in_(ids))
                .values(approved_units=services.approved_units / 2)
            )
        for ids in _chunks([a.id for i, a in enumerate(auths) if i % 17 == 3]):
            await c.execute(
                delete(services).where(
                    services.authorization_id.in_(ids), services.service_code == "97153"
                )
            )
        # Weekly caps (weekly_cap_exceeded): units on some authorizations' 97153, hours on others'.
        for ids in _chunks([a.id for i, a in enumerate(auths) if i % 4 == 2]):
            await c.execute(
                update(services)
                .where(services.authorization_id.in_(ids), services.service_code == "97153")
                .values(weekly_cap_units=24)
            )
        for ids in _chunks([a.id for i, a in enumerate(auths) if i % 6 == 5]):
            await c.execute(
                update(services)
                .where(services.authorization_id.in_(ids), services.service_code == "97155")
                .values(weekly_cap_minutes=90)
            )
        # Coordinates on every other location and one matrix entry: travel by distance and by
        # the admin's entry besides the type defaults.
        places = (
            await c.execute(
                select(Location.id, Location.organization_id, Location.location_type)
                .where(Location.location_type != "telehealth")
                .order_by(Location.id)
            )
        ).all()
        for i, place in enumerate(places[::2]):
            await c.execute(
                update(Location)
                .where(Location.id == place.id)
                .values(latitude=40.7 + i * 0.35, longitude=-74.0 + i * 0.4)
            )
        if len(places) >= 2:
            a, b = sorted((places[0].id, places[1].id))
            await c.execute(
                insert(LocationTravel).values(
                    organization_id=places[0].organization_id,
                    from_location_id=a,
                    to_location_id=b,
                    minutes=120,
                )
            )
        # Supervision sessions standing alone (supervision_unsupported): some 97155 sessions
        # marked as supervising a 97153 that does not contain them.
        lone = [s.id for i, s in enumerate(sessions) if i % 37 == 5]
        for ids in _chunks(lone):
            await c.execute(
                update(Session)
                .where(Session.id.in_(ids), Session.service_code == "97155")
                .values(supervises="97153")
            )
    await engine.dispose()
    print(f"perturbed {url}: {len(added)} time off / extra hours added", file=sys.stderr)


async def digest(url: str, seed: int, count: int) -> list[str]:
    url = normalize_database_url(url)
    ds = await _discover(url)
    engine = create_async_engine(url)
    async with engine.connect() as c:
        clients = [r[0] for r in await c.execute(text("SELECT id FROM clients ORDER BY id"))]
    await engine.dispose()
    settings = Settings(
        database_url=url, rate_limit_user="off", rate_limit_ip="off", log_level="WARNING"
    )
    app = create_app(settings)
    admin = mint_token(settings, ds.admin_id, expires_in=4 * 3600)
    rng = random.Random(seed)

    def therapist(n: int) -> str:
        return str(person_id("therapist", n))

    requests: list[tuple[str, int | None]] = []  # (path, therapist index of the token or None)
    for path in scenario_paths("schedule_week", ds, random.Random(seed))[:count]:
        first = path.split("therapist_ids=")[1].split(",")[0]
        n = next(i for i in range(ds.therapists) if therapist(i) == first)
        requests += [(path, None), (path, n)]
    both = "include_availability=true&include_conflicts=true"
    for _ in range(count // 2):
        n = rng.randrange(ds.therapists)
        day = ds.first_day + timedelta(days=rng.randrange(ds.days - 35))
        week = f"start_date={day}&end_date={day + timedelta(days=6)}"
        some = ",".join(therapist(rng.randrange(ds.therapists)) for _ in range(rng.randint(1, 7)))
        last = day + timedelta(days=rng.randrange(31))
        some_clients = ",".join(
            str(clients[rng.randrange(len(clients))]) for _ in range(rng.randint(1, 3))
        )
        base = "/get-schedule-data-batch?"
        requests += [
            (f"{base}{week}&therapist_ids={therapist(n)}&{both}", n),
            (
                f"{base}start_date={day}&end_date={day + timedelta(days=13)}&batch_size=500&{both}",
                n,
            ),
            (
                f"{base}start_date={day}&end_date={last}&therapist_ids={some}&{both}"
                "&time_zone=Pacific/Auckland",
                None,
            ),
            (f"{base}start_date={day}&end_date={day + timedelta(days=2)}&{both}&offset=50", None),
            (f"{base}{week}&include_conflicts=true", None),
            (f"{base}{week}&client_ids={some_clients}&{both}", None),
            (
                f"{base}{week}&therapist_ids={some}&client_ids={some_clients}&{both}"
                "&time_zone=America/Los_Angeles",
                None,
            ),
            (f"{base}{week}&therapist_ids={therapist(n)}&{both}&time_zone=Asia/Tokyo", n),
        ]
    lines = []
    statuses: collections.Counter[int] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        for path, n in requests:
            token = (
                admin
                if n is None
                else mint_token(settings, person_id("therapist-user", n), expires_in=3600)
            )
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            statuses[response.status_code] += 1
            if response.status_code == 200:
                for conflict in response.json()["data"].get("conflicts") or []:
                    reason = conflict.get("reason")
                    kinds[conflict["type"] + (f"/{reason}" if reason else "")] += 1
            line = {
                "path": path,
                "role": "admin" if n is None else "therapist",
                "status": response.status_code,
                "sha256": _digest(response.content),
            }
            lines.append(json.dumps(line) + "\n")
    print(f"{len(lines)} answers {dict(statuses)} {dict(kinds)}", file=sys.stderr)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.week_variants", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("perturb", help="alter a COPY of a dataset so every conflict appears")
    p.add_argument("--database-url", required=True)
    p.add_argument("--zone", default="Asia/Tokyo", help="the organization's new time zone")
    d = commands.add_parser("digest", help="digest of many kinds of request")
    d.add_argument("--database-url", required=True)
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--seed", type=int, default=11)
    d.add_argument("--count", type=int, default=30)
    args = parser.parse_args(argv)
    if args.command == "perturb":
        asyncio.run(perturb(args.database_url, args.zone))
    else:
        lines = asyncio.run(digest(args.database_url, args.seed, args.count))
        args.out.write_text("".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
