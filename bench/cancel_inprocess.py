"""`POST /sessions/cancel` served in-process: CPU, statements, round trips and SQL time per cancel,
with the waitlist's share of it shown by the freed-slot recording on and off in one process. Books
its sessions first (hold + confirm, not measured) and removes everything it wrote afterwards: use a
private copy of the dataset.

    .venv/bin/python -m bench.cancel_inprocess --database-url URL --count 100 --rounds 4
    .venv/bin/python -m bench.cancel_inprocess --database-url URL --modes on --profile
    .venv/bin/python -m bench.cancel_inprocess --database-url URL --waiting 1   # someone waits

The modes take turns cancel by cancel (neighbouring sessions, the same load). `off` replaces
`calendar/freed.record_freed` in this process by a function that records nothing (what the cancel
costs without the waitlist: no outbox row, nothing to settle); `on` is the code as it is.
`--waiting N` first puts N entries on the organization's waitlist (removed afterwards) that fit none
of the freed slots (a client wanting a date years ahead), so that the cancel writes its outbox row
and the matching runs and finds nobody. Statements are counted with SQLAlchemy's cursor events
(BEGIN and COMMIT are not cursor executions: transactions are counted apart).
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
from sqlalchemy import text

from bench.booking_inprocess import CURRENT, Tally
from bench.booking_slots import find_slots
from bench.cancel_sessions import cancel_candidates, remove_since
from bench.harness import _discover
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.calendar import freed
from therapy_scheduler.config import Settings, normalize_database_url
from therapy_scheduler.infra import changes, last_statement

RECORD_FREED = freed.record_freed


async def _record_nothing(conn: Any, **_values: Any) -> freed.Recorded:
    """`off`: the freeing paths as if there were no waitlist (no outbox row, nothing to settle)."""
    return freed.Recorded(uuid.UUID(int=0), last_statement.Kept(False))


async def _add_waiting(
    url: str, organization_id: uuid.UUID, admin_id: uuid.UUID, n: int, run: str
) -> None:
    """`n` waitlist entries of active clients that no freed slot fits (earliest date years ahead)."""
    from therapy_scheduler.infra.db import Database

    db = Database.from_settings(Settings(database_url=url))
    try:
        async with db.write() as conn:
            clients = (
                await conn.execute(
                    text(
                        "SELECT id FROM clients WHERE organization_id = :o AND status = 'active' "
                        "ORDER BY id LIMIT :n"
                    ),
                    {"o": organization_id, "n": n},
                )
            ).all()
            for (client_id,) in clients:
                await conn.execute(
                    text(
                        "INSERT INTO waitlist_entries (id, organization_id, client_id, "
                        "service_code, duration_minutes, therapist_ids, windows, time_zone, "
                        "earliest_date, priority, note, status, created_by, created_at, "
                        "updated_at) VALUES (:id, :o, :c, '97153', 60, '[]', "
                        '\'[{"weekday": 1, "start": "09:00", "end": "17:00"}]\', \'UTC\', '
                        "'2099-01-01', 50, :note, 'waiting', :by, now(), now())"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "o": organization_id,
                        "c": client_id,
                        "note": run,
                        "by": admin_id,
                    },
                )
            changes.touch(conn, organization_id)
    finally:
        await db.dispose()


async def _remove_waiting(url: str, run: str) -> None:
    from therapy_scheduler.infra.db import Database

    db = Database.from_settings(Settings(database_url=url))
    try:
        async with db.write() as conn:
            await conn.execute(text("DELETE FROM waitlist_entries WHERE note = :n"), {"n": run})
    finally:
        await db.dispose()


async def _run(args: argparse.Namespace) -> None:
    url = normalize_database_url(args.database_url)
    ds = await _discover(url)
    modes = args.modes.split(",")
    measured = args.count * args.rounds * len(modes)
    since = datetime.now().astimezone()
    found = await find_slots(url, ds.organization_id, 3 * (measured + 40), random.Random(args.seed))
    slots = cancel_candidates(found, since)[: measured + 20]
    settings = Settings(
        database_url=url, rate_limit_user="off", rate_limit_ip="off", log_level="WARNING"
    )
    app = create_app(settings)
    token = mint_token(settings, ds.admin_id, expires_in=4 * 3600)
    tally = Tally()
    run = uuid.uuid4().hex[:8]
    outcomes: Counter[str] = Counter()
    cpu: defaultdict[str, float] = defaultdict(float)
    wall: defaultdict[str, float] = defaultdict(float)
    profiler = cProfile.Profile() if args.profile else None
    if args.waiting:
        await _add_waiting(url, ds.organization_id, ds.admin_id, args.waiting, f"bench-{run}")
    try:
        async with app.router.lifespan_context(app):
            db = app.state.db
            tally.attach(db.writer)
            tally.attach(db.reader)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                auth = {"Authorization": f"Bearer {token}"}
                CURRENT["kind"] = "booking"
                ids: list[str] = []
                for slot in slots:
                    held = await client.post("/sessions/hold", json=slot.hold_body(), headers=auth)
                    if held.status_code != 200:
                        continue
                    body = {
                        "hold_key": held.json()["hold_key"],
                        "session": {"start_time": slot.start, "end_time": slot.end},
                    }
                    confirmed = await client.post("/sessions/confirm", json=body, headers=auth)
                    if confirmed.status_code == 200:
                        ids.append(confirmed.json()["session"]["id"])
                if len(ids) < measured + 10:
                    raise SystemExit(f"booked {len(ids)} sessions, {measured + 10} needed")

                async def cancel(session_id: str, kind: str) -> None:
                    CURRENT["kind"] = kind
                    headers = auth | {"Idempotency-Key": f"{run}-x{session_id}"}
                    body = {"session_id": session_id, "reason": "client_schedule_conflict"}
                    answer = await client.post("/sessions/cancel", json=body, headers=headers)
                    tally.requests[kind] += 1
                    outcomes[f"{kind} {answer.status_code}"] += 1

                for mode in modes:  # warm-up of each: caches, prepared statements
                    freed.record_freed = RECORD_FREED if mode == "on" else _record_nothing
                    for _ in range(5):
                        await cancel(ids.pop(), f"warm-{mode}")
                # The modes take turns cancel by cancel (neighbouring sessions): no drift of the
                # machine's load or of the sessions' part of the schedule favours either.
                for n in range(args.rounds * args.count):
                    for mode in modes if n % 2 == 0 else modes[::-1]:
                        freed.record_freed = RECORD_FREED if mode == "on" else _record_nothing
                        if profiler and mode == modes[0]:
                            profiler.enable()
                        cpu0, wall0 = time.process_time(), time.perf_counter()
                        await cancel(ids.pop(), mode)
                        cpu[mode] += time.process_time() - cpu0
                        wall[mode] += time.perf_counter() - wall0
                        if profiler:
                            profiler.disable()
                freed.record_freed = RECORD_FREED
                await freed.drain()
    finally:
        freed.record_freed = RECORD_FREED
        if args.waiting:
            await _remove_waiting(url, f"bench-{run}")
        await remove_since(url, since)
    print(f"outcomes: {dict(sorted(outcomes.items()))}; waiting entries {args.waiting}")
    for mode in modes:
        n = max(tally.requests[mode], 1)
        print(
            f"{mode:>3}: {cpu[mode] / n * 1000:.3f} ms CPU, {wall[mode] / n * 1000:.3f} ms wall, "
            f"{tally.statements[mode] / n:.2f} statements, "
            f"{tally.transactions[mode] / n:.2f} transactions, "
            f"{tally.sql_seconds[mode] / n * 1000:.3f} ms SQL per cancel ({n} cancels)"
        )
        if args.statements:
            for stmt, count in tally.texts[mode].most_common():
                seconds = tally.text_seconds[mode][stmt] / n * 1000
                print(f"   {count / n:5.2f} {seconds:6.3f} ms  {stmt}")
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cancel_inprocess", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=100, help="cancels per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="on,off", help="on, off or both, in that order")
    parser.add_argument("--waiting", type=int, default=0, help="waitlist entries fitting nothing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--statements", action="store_true", help="list the statements")
    parser.add_argument("--profile", action="store_true", help="cProfile the first mode's cancels")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    asyncio.run(_run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
