"""The booking cycle (`POST /sessions/hold` then `POST /sessions/confirm`, with Idempotency-Keys as the
bench sends them) served in-process: statements, round trips and SQL time per request, CPU per
booking, optionally a cProfile; `--concurrency N` runs N cycles at once (lock waits then show up as
wall time). Writes bookings: use a private copy of the dataset; what it books is removed afterwards.

    .venv/bin/python -m bench.booking_inprocess --database-url URL --count 200
    .venv/bin/python -m bench.booking_inprocess --database-url URL --count 200 --profile
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.booking_inprocess ...   # other code

Statements are counted with SQLAlchemy's cursor events (BEGIN, COMMIT and pre-ping are not cursor
executions: they are counted apart as `begin` / `commit` events and `pre-ping` is not shown).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import event

from bench.booking_slots import find_slots
from bench.harness import _check_and_clean, _discover
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url

CURRENT: dict[str, str] = {}


class Tally:
    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.sql_seconds: defaultdict[str, float] = defaultdict(float)
        self.transactions: Counter[str] = Counter()
        self.texts: dict[str, Counter[str]] = defaultdict(Counter)
        self.text_seconds: dict[str, defaultdict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.requests: Counter[str] = Counter()

    def attach(self, engine: Any) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["started"] = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            kind = CURRENT.get("kind", "other")
            self.statements[kind] += 1
            seconds = time.perf_counter() - conn.info.pop("started")
            self.sql_seconds[kind] += seconds
            shown = " ".join(statement.split())[:110]
            self.texts[kind][shown] += 1
            self.text_seconds[kind][shown] += seconds

        @event.listens_for(sync, "begin")
        def begin(conn: Any) -> None:
            self.transactions[CURRENT.get("kind", "other")] += 1


async def _run(args: argparse.Namespace) -> None:
    url = normalize_database_url(args.database_url)
    ds = await _discover(url)
    slots = await find_slots(url, ds.organization_id, args.count + 20, random.Random(args.seed))
    settings = Settings(
        database_url=url, rate_limit_user="off", rate_limit_ip="off", log_level="WARNING"
    )
    app = create_app(settings)
    token = mint_token(settings, ds.admin_id, expires_in=4 * 3600)
    tally = Tally()
    run = uuid.uuid4().hex[:8]
    outcomes: Counter[str] = Counter()
    since = datetime.now().astimezone()
    async with app.router.lifespan_context(app):
        db = app.state.db
        tally.attach(db.writer)
        tally.attach(db.reader)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def cycle(n: int, kind_prefix: str = "") -> None:
                slot = slots[n]
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": f"{run}-h{n}",
                }
                CURRENT["kind"] = kind_prefix + "hold"
                held = await client.post("/sessions/hold", json=slot.hold_body(), headers=headers)
                tally.requests[kind_prefix + "hold"] += 1
                if held.status_code != 200:
                    outcomes["hold " + str(held.json().get("code", held.status_code))] += 1
                    return
                headers["Idempotency-Key"] = f"{run}-c{n}"
                CURRENT["kind"] = kind_prefix + "confirm"
                body = {
                    "hold_key": held.json()["hold_key"],
                    "session": {"start_time": slot.start, "end_time": slot.end},
                }
                confirmed = await client.post("/sessions/confirm", json=body, headers=headers)
                tally.requests[kind_prefix + "confirm"] += 1
                outcomes["confirm " + str(confirmed.status_code)] += 1

            for n in range(10):  # warm-up: caches, prepared statements, pool
                await cycle(n, "warm-")
            profiler = cProfile.Profile() if args.profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            if args.concurrency <= 1:
                for n in range(10, 10 + args.count):
                    await cycle(n)
            else:
                queue = list(range(10, 10 + args.count))

                async def worker() -> None:
                    while queue:
                        await cycle(queue.pop(0))

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    doubles, created = await _check_and_clean(url, since, clean=True)
    booked = outcomes["confirm 200"]
    print(f"outcomes: {dict(outcomes)}; double bookings {doubles}; sessions {created}")
    print(
        f"{booked} bookings: {cpu / max(booked, 1) * 1000:.2f} ms CPU and "
        f"{wall / max(booked, 1) * 1000:.2f} ms wall per booking, {booked / wall:.1f} bookings/s "
        f"(concurrency {args.concurrency}, profiler {'on' if profiler else 'off'})"
    )
    if args.concurrency <= 1:
        for kind in ("hold", "confirm"):
            n = max(tally.requests[kind], 1)
            print(
                f"{kind}: {tally.statements[kind] / n:.1f} statements, "
                f"{tally.transactions[kind] / n:.1f} transactions, "
                f"{tally.sql_seconds[kind] / n * 1000:.2f} ms SQL per request"
            )
            if args.statements:
                for stmt, count in tally.texts[kind].most_common():
                    print(f"   {count / n:5.2f}  {stmt}")
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.booking_inprocess", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=200, help="hold+confirm cycles measured")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--statements", action="store_true", help="list the statements")
    parser.add_argument("--profile", action="store_true", help="cProfile the cycles")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    asyncio.run(_run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
