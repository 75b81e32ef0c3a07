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
import contextlib
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from bench.booking_slots import find_slots
from bench.harness import _check_and_clean, _discover
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url

CURRENT: dict[str, str] = {}
# Statements that take advisory locks: the locks alone, or a hold's people read, which takes them first.
LOCKING = (
    "SELECT pg_advisory_xact_lock(",
    "WITH locks AS MATERIALIZED (SELECT pg_advisory_xact_lock(",
)


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
        # advisory locks (by how many one statement takes: 1 = a user's, 2 = people's): how long
        # each was held, from the statement that took it to the COMMIT or ROLLBACK
        self.held: defaultdict[str, list[float]] = defaultdict(list)

    def attach(self, engine: Any) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["started"] = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            kind = CURRENT.get("kind", "other")
            if " ".join(statement[:120].split()).startswith(LOCKING):
                name = f"{kind}: {statement.count('pg_advisory_xact_lock')} lock(s)"
                conn.info.setdefault("locks", []).append((name, time.perf_counter()))
            self.statements[kind] += 1
            seconds = time.perf_counter() - conn.info.pop("started")
            self.sql_seconds[kind] += seconds
            shown = " ".join(statement.split())[:110]
            self.texts[kind][shown] += 1
            self.text_seconds[kind][shown] += seconds

        @event.listens_for(sync, "begin")
        def begin(conn: Any) -> None:
            self.transactions[CURRENT.get("kind", "other")] += 1

        def ended(conn: Any) -> None:
            for name, since in conn.info.pop("locks", ()):
                self.held[name].append(time.perf_counter() - since)

        # (the events fire as the COMMIT or ROLLBACK is sent: its own round trip is not counted)
        event.listen(sync, "commit", ended)
        event.listen(sync, "rollback", ended)


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
            server = await _server_counters(args.database_url) if args.pg_stat_statements else None
            backends = await _backend_cpu(args.database_url)
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
            backend_cpu = await _backend_cpu(args.database_url, backends)
            if server is not None:
                await server.read()
    doubles, created = await _check_and_clean(url, since, clean=True)
    booked = outcomes["confirm 200"]
    print(f"outcomes: {dict(outcomes)}; double bookings {doubles}; sessions {created}")
    print(
        f"{booked} bookings: {cpu / max(booked, 1) * 1000:.2f} ms CPU and "
        f"{wall / max(booked, 1) * 1000:.2f} ms wall per booking, {booked / wall:.1f} bookings/s "
        f"(concurrency {args.concurrency}, profiler {'on' if profiler else 'off'})"
    )
    if backend_cpu is not None:
        print(
            f"{backend_cpu / max(booked, 1) * 1000:.2f} ms CPU of this database's backends per booking"
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
    for name, times in sorted(tally.held.items()):
        if name.startswith(("hold", "confirm")) and times:
            times.sort()
            print(
                f"{name} held {statistics.median(times) * 1000:.2f} ms median, "
                f"{times[int(len(times) * 0.9)] * 1000:.2f} ms p90 (from its statement to the COMMIT)"
            )
    if server is not None:
        server.report(booked, args.top)
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.top)
        if args.profile_out:
            stats.dump_stats(args.profile_out)


class ServerCounters:
    """The database server's own time per statement (pg_stat_statements, which the server must load
    through shared_preload_libraries), its WAL and the sizes of the booking tables' indexes, from
    the end of the warm-up to the end of the measured cycles. The counters are the server's: run it
    on a server of its own, where nothing else executes statements meanwhile."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.rows: list[Any] = []
        self.wal = self.fpi = 0
        self.sizes: dict[str, tuple[int, int]] = {}
        self.postmaster: int | None = None
        self.cpu = 0.0

    def _cpu(self) -> float:
        """CPU seconds of the server's processes so far: the live ones, plus the exited ones that
        the postmaster has reaped (its cutime and cstime). 0 if the server is not on this machine."""
        if self.postmaster is None:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            elif ppid == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    async def _sizes(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) AS size FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname IN ('sessions', 'hold_occurrences')"
        )
        return {r["relname"]: r["size"] for r in rows}

    async def start(self) -> None:
        self._before = await self._sizes()
        directory = await self.conn.fetchval("SHOW data_directory")
        with contextlib.suppress(OSError, ValueError):
            pid_file = Path(directory) / "postmaster.pid"
            self.postmaster = int(pid_file.read_text().split("\n", 1)[0])
        self._cpu0 = self._cpu()
        # From a checkpoint, as after each one in production: the first change of each page then
        # writes the page's full image to the WAL (full_page_writes).
        await self.conn.execute("CHECKPOINT")
        await self.conn.execute("SELECT pg_stat_statements_reset()")
        self._wal0, self._fpi0 = await self.conn.fetchrow(
            "SELECT wal_bytes, wal_fpi FROM pg_stat_wal"
        )

    async def read(self) -> None:
        self.cpu = self._cpu() - self._cpu0
        self.rows = await self.conn.fetch(
            "SELECT query, calls, total_exec_time, shared_blks_hit + shared_blks_read AS blocks, "
            "wal_bytes, wal_fpi, toplevel FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_wal%' "
            "ORDER BY total_exec_time DESC"
        )
        wal, fpi = await self.conn.fetchrow("SELECT wal_bytes, wal_fpi FROM pg_stat_wal")
        self.wal, self.fpi = int(wal - self._wal0), fpi - self._fpi0
        after = await self._sizes()
        self.sizes = {k: (self._before.get(k, 0), v) for k, v in after.items()}
        await self.conn.close()

    def report(self, booked: int, top: int) -> None:
        n = max(booked, 1)
        total = sum(r["total_exec_time"] for r in self.rows if r["toplevel"])
        print(
            f"server: {total / n:.3f} ms statement time, {self.wal / n / 1024:.1f} kB WAL and "
            f"{self.fpi / n:.1f} full page images per booking (pg_stat_statements, top-level statements); "
            + (
                f"{self.cpu / n * 1000:.2f} ms CPU of the server's processes per booking"
                if self.postmaster
                else "server CPU unknown (not on this machine)"
            )
        )
        print("   calls     ms   blocks  WAL kB    FPI  (per booking)  statement")
        for r in self.rows[:top]:
            text = " ".join(r["query"].split())[:120]
            nested = "" if r["toplevel"] else "(nested) "
            print(
                f"  {r['calls'] / n:6.2f} {r['total_exec_time'] / n:6.3f} {r['blocks'] / n:7.1f} "
                f"{int(r['wal_bytes']) / n / 1024:7.2f} {r['wal_fpi'] / n:6.2f}  {nested}{text}"
            )
        print("index sizes (kB, before → after the cycles):")
        for name, (before, after) in sorted(self.sizes.items()):
            print(f"   {name:45} {before // 1024:8} → {after // 1024:8}")


def _ticks(pids: list[int]) -> dict[int, int]:
    ticks: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


async def _backend_cpu(database_url: str, before: dict[int, int] | None = None) -> Any:
    """CPU ticks (utime + stime) of the backends connected to this database now, by pid; with
    `before`, the seconds they used since then (a backend new since then counts from its start;
    None when the server is not on this machine). Other databases' backends do not count, so a
    shared server's other work does not either."""
    import asyncpg

    url = normalize_database_url(database_url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    ticks = _ticks([pid for (pid,) in pids])
    if before is None:
        return ticks
    if not ticks:
        return None
    used = sum(t - before.get(pid, 0) for pid, t in ticks.items())
    return used / os.sysconf("SC_CLK_TCK")


async def _server_counters(database_url: str) -> ServerCounters:
    import asyncpg

    url = normalize_database_url(database_url).replace("postgresql+asyncpg://", "postgresql://")
    counters = ServerCounters(await asyncpg.connect(url))
    await counters.start()
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.booking_inprocess", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=200, help="hold+confirm cycles measured")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--statements", action="store_true", help="list the statements")
    parser.add_argument("--profile", action="store_true", help="cProfile the cycles")
    parser.add_argument(
        "--pg-stat-statements",
        action="store_true",
        help="the server's time, blocks and WAL per statement per booking (pg_stat_statements)",
    )
    parser.add_argument("--profile-out", help="also write the profile to this file (pstats)")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    asyncio.run(_run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
