"""Read scenarios served in-process (httpx ASGI transport, no server, no wrk): a profile of where a
request's CPU goes, or a digest of every response to compare two versions of the code.

    .venv/bin/python -m bench.inprocess --database-url URL --scenario sessions_page --profile
    .venv/bin/python -m bench.inprocess --database-url URL --scenario sessions_page --dump new.jsonl
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.inprocess ... --dump old.jsonl   # other code
    diff old.jsonl new.jsonl

The first line also gives the whole machine's busy CPU per request over the timed requests
(`/proc/stat`: this process, PostgreSQL's backends and anything else running), the lower bound of
a request's wall time once its statements overlap is that figure divided by the cores.

`--revalidate` first fetches each path once and keeps its `ETag`, then sends the timed requests with
`If-None-Match` (a board reloading a week it shows: 304s while nothing is written). `--statements`
counts the SQL statements the timed requests ran.

`--dump` writes one line per request: path, role, status and the SHA-256 of the body with the
timings (`performance.query_time_ms`) removed, so that equal lines mean equal answers. `--as
therapist` sends the requests as the therapist user of the first therapist in each path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import event

from bench.build_dataset import person_id
from bench.harness import _discover, scenario_paths
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url

# Keys left out of a digest: timings and request ids always; with BENCH_DIGEST_IGNORE_CURSORS=1 also
# the opaque pagination cursors, to compare two versions whose cursor encoding differs.
IGNORED_KEYS = ("query_time_ms", "request_id") + (
    ("next_cursor", "cursor") if os.environ.get("BENCH_DIGEST_IGNORE_CURSORS") == "1" else ()
)


# The read scenarios served in-process (also `bench.lockstep`'s).
SCENARIOS = ("sessions_page", "sessions_cursor", "schedule_week")


def _without_timings(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _without_timings(v) for k, v in body.items() if k not in IGNORED_KEYS}
    if isinstance(body, list):
        return [_without_timings(v) for v in body]
    return body


def _digest(content: bytes) -> str:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return hashlib.sha256(content).hexdigest()
    canonical = orjson.dumps(_without_timings(body), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def _run(args: argparse.Namespace, dumped: list[str]) -> None:
    url = normalize_database_url(args.database_url)
    ds = await _discover(url)
    settings = Settings(
        database_url=url, rate_limit_user="off", rate_limit_ip="off", log_level="WARNING"
    )
    app = create_app(settings)
    admin = mint_token(settings, ds.admin_id, expires_in=4 * 3600)
    paths = scenario_paths(args.scenario, ds, random.Random(args.seed))
    paths = paths[: args.count]

    def token_for(path: str) -> str:
        if args.as_role != "therapist":
            return admin
        ids = path.split("therapist_id=", 1)[1] if "therapist_id=" in path else ""
        ids = ids or path.split("therapist_ids=", 1)[1]
        first = ids.split("&", 1)[0].split(",", 1)[0]
        n = next(i for i in range(ds.therapists) if str(person_id("therapist", i)) == first)
        return mint_token(settings, person_id("therapist-user", n), expires_in=3600)

    transport = httpx.ASGITransport(app=app)
    profiler = cProfile.Profile() if args.profile else None
    served = 0
    statements = 0
    statuses: dict[int, int] = {}
    etags: dict[str, str] = {}

    # --statements: each statement's count and time (driver reads fire the same events).
    started_at: dict[int, float] = {}
    timings: dict[str, list[float]] = {}

    def before(conn: Any, _cursor: Any, *_: Any) -> None:
        started_at[id(conn)] = time.perf_counter()

    def count(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        nonlocal statements
        statements += 1
        elapsed = time.perf_counter() - started_at.pop(id(conn), time.perf_counter())
        timings.setdefault(" ".join(sql.split())[:90], []).append(elapsed)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        # Warm-up: compiled-statement caches, prepared statements, pool.
        for path in paths[:20]:
            await client.get(path, headers={"Authorization": f"Bearer {admin}"})
        if args.revalidate:
            for path in paths:
                first = await client.get(
                    path, headers={"Authorization": f"Bearer {token_for(path)}"}
                )
                etags[path] = first.headers.get("etag", "")
        db = app.state.db
        engines = {id(e): e for e in (db.reader, db.writer, db.primary_reader) if e}
        if args.statements:
            for engine in engines.values():
                event.listen(engine.sync_engine, "before_cursor_execute", before)
                event.listen(engine.sync_engine, "after_cursor_execute", count)
        started_cpu = time.process_time()
        started_machine = _machine_busy()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for path in paths:
            headers = {"Authorization": f"Bearer {token_for(path)}"}
            if args.revalidate:
                headers["If-None-Match"] = etags[path]
            pending = [path]
            pages = 0
            while pending:
                current = pending.pop()
                response = await client.get(current, headers=headers)
                served += 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if args.dump:
                    line = {
                        "path": current,
                        "role": args.as_role,
                        "status": response.status_code,
                        "sha256": _digest(response.content),
                    }
                    dumped.append(json.dumps(line) + "\n")
                if args.scenario == "sessions_cursor" and pages < args.pages:
                    cursor = response.json().get("data", {}).get("pagination", {})
                    if cursor.get("next_cursor"):
                        pending.append(f"{path}&cursor={cursor['next_cursor']}")
                        pages += 1
        if profiler:
            profiler.disable()
        cpu = time.process_time() - started_cpu
        wall = time.perf_counter() - started
        machine = _machine_busy() - started_machine
    print(
        f"{served} requests, {cpu / served * 1000:.2f} ms CPU and {wall / served * 1000:.2f} ms "
        f"wall per request (profiler {'on' if profiler else 'off'}), "
        + (f"{machine / served * 1000:.2f} ms machine CPU, " if machine == machine else "")
        + "statuses "
        f"{dict(sorted(statuses.items()))}"
        + (f", {statements / served:.2f} statements per request" if args.statements else ""),
        file=sys.stderr,
    )
    for sql, times in sorted(timings.items(), key=lambda item: -sum(item[1])):
        print(
            f"  {len(times) / served:5.2f} per request, {sum(times) / len(times) * 1000:6.2f} ms "
            f"each (wall, from the driver call to its rows): {sql}",
            file=sys.stderr,
        )
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.top)
        if args.profile_out:
            stats.dump_stats(args.profile_out)


def _machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy since boot (every core; NaN without
    /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.inprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="sessions_page",
    )
    parser.add_argument("--count", type=int, default=500, help="requests (paths) to send")
    parser.add_argument("--pages", type=int, default=5, help="sessions_cursor: pages per path")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--as", dest="as_role", choices=["admin", "therapist"], default="admin")
    parser.add_argument(
        "--revalidate", action="store_true", help="send If-None-Match with each path's ETag"
    )
    parser.add_argument("--statements", action="store_true", help="count the SQL statements")
    parser.add_argument("--dump", help="write one digest line per response to this file")
    parser.add_argument("--profile", action="store_true", help="cProfile the requests")
    parser.add_argument("--profile-out", help="also save the cProfile stats here")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args(argv)
    dumped: list[str] = []
    asyncio.run(_run(args, dumped))
    if args.dump:
        Path(args.dump).write_text("".join(dumped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
