"""The benchmark run (bench/run): starts the service and the baseline, drives each scenario with wrk,
and reports req/s, latency percentiles and errors as a table and as JSON lines.

Scenarios (docs/API.md): sessions_page, sessions_cursor, schedule_week, dropdown (read, with a baseline and
pgbench's tps for the same SQL), schedule_week_revalidate (schedule_week's requests with the ETag of
their answer in If-None-Match: the 304 path), booking (hold + confirm cycles, then an SQL check for
double bookings), cancel (POST /sessions/cancel of sessions booked before the measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import cancel_sessions
from bench.booking_slots import find_slots
from bench.build_dataset import ADMIN_EMAIL, person_id
from bench.pgbouncer import pgbouncer
from bench.sql import (
    dropdown_sql,
    pgbench_script,
    schedule_week_sql,
    sessions_page_sql,
)
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url
from therapy_scheduler.infra.changes import BUMP_EVERY_ORGANIZATION

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
RESULTS = BENCH / "results" / "latest.jsonl"
VENV_BIN = ROOT / ".venv" / "bin"
READ_SCENARIOS = ("sessions_page", "sessions_cursor", "schedule_week", "dropdown")
# booking_4proc: the booking scenario against 4 API processes (`serve --workers 4`, each its own pool),
# to show that the guarantees (0 double bookings) hold across processes. Not in the default run.
# booking_4proc_pgbouncer: the same, with the 4 processes connected through a PgBouncer in transaction
# pooling mode that the run starts in front of the database (bench/pgbouncer.py).
BOOKING_SCENARIOS = ("booking", "booking_4proc", "booking_4proc_pgbouncer")
# Conditional reads: the requests of the scenario named after them, each with the ETag its answer
# had when the run started (no baseline or pgbench: the baseline has no ETags).
REVALIDATE_SCENARIOS = {"schedule_week_revalidate": "schedule_week"}
# cancel: POST /sessions/cancel of sessions booked (hold + confirm) before the measurement, so that the
# cancel request alone is timed. Not in the default run.
CANCEL_SCENARIO = "cancel"
ALL_SCENARIOS = (*READ_SCENARIOS, *REVALIDATE_SCENARIOS, *BOOKING_SCENARIOS, CANCEL_SCENARIO)
DEFAULT_SCENARIOS = (*READ_SCENARIOS, *REVALIDATE_SCENARIOS, "booking")
MULTI_PROCESS_WORKERS = 4
REVALIDATE_PATHS = 200
# Rich cuts its output to 80 columns when it cannot ask a terminal for its width (a log, CI): the
# table is then printed at its full width instead.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 400)


@dataclass(frozen=True)
class Dataset:
    """What the run needs to know about the dataset, read from the database itself."""

    url: str
    database: str  # "postgresql" | "sqlite"
    organization_id: uuid.UUID
    time_zone: str
    admin_id: uuid.UUID
    therapists: int
    sessions: int
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days


async def _discover(url: str) -> Dataset:
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.connect() as conn:
            org = (
                await conn.execute(text("SELECT id, time_zone FROM organizations ORDER BY name"))
            ).first()
            admin = (
                await conn.execute(
                    text("SELECT id FROM users WHERE email = :e"), {"e": ADMIN_EMAIL}
                )
            ).first()
            if org is None or admin is None:
                raise SystemExit(f"{url} holds no bench dataset: build one with bench/dataset")
            therapists = (await conn.execute(text("SELECT count(*) FROM therapists"))).scalar_one()
            row = (
                await conn.execute(
                    text("SELECT count(*), min(start_time), max(start_time) FROM sessions")
                )
            ).one()
    finally:
        await engine.dispose()

    def day(value: Any) -> date:
        return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])

    return Dataset(
        url=url,
        database=engine.dialect.name,
        organization_id=uuid.UUID(str(org.id)),
        time_zone=org.time_zone,
        admin_id=uuid.UUID(str(admin.id)),
        therapists=int(therapists),
        sessions=int(row[0]),
        first_day=day(row[1]),
        last_day=day(row[2]),
    )


# --- request paths -------------------------------------------------------------------------


def _therapist(n: int) -> str:
    return str(person_id("therapist", n))


def scenario_paths(scenario: str, ds: Dataset, rng: random.Random, count: int = 2000) -> list[str]:
    """Requests rotating over many therapists and dates (the same for the service and baseline)."""
    out = []
    for _ in range(count):
        t = rng.randrange(ds.therapists)
        if scenario == "sessions_page":
            first = ds.first_day + timedelta(days=rng.randrange(max(1, ds.days - 30)))
            out.append(
                f"/get-sessions-optimized?therapist_id={_therapist(t)}&start_date={first}"
                f"&end_date={first + timedelta(days=29)}&limit=50"
            )
        elif scenario == "sessions_cursor":
            out.append(f"/get-sessions-optimized?limit=50&therapist_id={_therapist(t)}")
        elif scenario == "schedule_week":
            monday = ds.first_day - timedelta(days=ds.first_day.weekday())
            week = monday + timedelta(weeks=rng.randrange(max(1, ds.days // 7)))
            ids = ",".join(_therapist((t + k) % ds.therapists) for k in range(50))
            out.append(
                f"/get-schedule-data-batch?start_date={week}&end_date={week + timedelta(days=6)}"
                f"&therapist_ids={ids}&include_availability=true&include_conflicts=true"
            )
        elif scenario == "dropdown":
            out.append("/get-dropdown-data?types=all")
    return out


# --- pgbench -------------------------------------------------------------------------------


def _pgbench_script(scenario: str, ds: Dataset) -> str:
    org = f"'{ds.organization_id}'::uuid"
    therapist = "md5('therapist-' || (:t)::text)::uuid"
    # No ':' inside literals: pgbench would read it as a variable reference.
    d0 = ds.first_day
    first = f"make_timestamptz({d0.year}, {d0.month}, {d0.day}, 0, 0, 0, 'UTC')"
    pick = {"t": f"random(0, {ds.therapists - 1})", "d": f"random(0, {max(0, ds.days - 31)})"}
    if scenario == "sessions_page":
        start = f"{first} + make_interval(days => (:d)::int)"
        return pgbench_script(
            sessions_page_sql(dates=True, cursor=False),
            pick,
            {
                1: org,
                2: therapist,
                3: start,
                4: f"{start} + interval '30 days'",
                5: "50",
                6: "0",
                7: "now()",
            },
        )
    if scenario == "sessions_cursor":
        return pgbench_script(
            sessions_page_sql(dates=False, cursor=True),
            pick,
            {
                1: org,
                2: therapist,
                3: "NULL",
                4: "NULL",
                5: "50",
                6: "0",
                7: "now()",
                8: f"{first} + make_interval(days => (:d)::int)",
                9: "'ffffffff-ffff-4fff-bfff-ffffffffffff'::uuid",
            },
        )
    if scenario == "schedule_week":
        start = f"{first} + make_interval(days => 7 * ((:d)::int / 7))"
        block = "generate_series((:t)::int, (:t)::int + 49) g"
        modulo = f"(g % {ds.therapists})::text"
        ids = "ARRAY(SELECT md5('therapist-' || " + modulo + ")::uuid FROM " + block + ")"  # noqa: S608
        return pgbench_script(
            schedule_week_sql(),
            pick,
            {
                1: org,
                2: ids,
                3: start,
                4: f"{start} + interval '7 days'",
                5: "100",
                6: "0",
                7: "now()",
            },
        )
    from bench.baseline_app import VOCABULARIES

    literal = "'" + VOCABULARIES.replace("'", "''") + "'"
    return pgbench_script(dropdown_sql(), {}, {1: org, 2: literal})


def run_pgbench(scenario: str, ds: Dataset, workdir: Path, connections: int, seconds: int) -> float:
    script = workdir / f"{scenario}.pgbench.sql"
    script.write_text(_pgbench_script(scenario, ds))
    url = normalize_database_url(ds.url).replace("postgresql+asyncpg://", "postgresql://")
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(connections),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"tps = ([0-9.]+)", out.stdout)
    if out.returncode != 0 or match is None:
        console.print(f"[red]pgbench {scenario} failed:[/red] {out.stderr.strip()[-500:]}")
        return 0.0
    return float(match.group(1))


# --- processes -----------------------------------------------------------------------------


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Runs a server in its own process group until the block ends; yields its base URL."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited early; see {log}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {log}")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def service_command(workers: int, port: int) -> list[str]:
    return [
        str(VENV_BIN / "therapy-scheduler"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def service_env(ds: Dataset, src: str | None = None) -> dict[str, str]:
    env = {
        "THERAPY_SCHEDULER_DATABASE_URL": ds.url,
        "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
        "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
        "THERAPY_SCHEDULER_LOG_LEVEL": "WARNING",
    }
    if src:
        # Another tree's code (an older checkout's src) served by this venv, as bench.cpu does.
        env["PYTHONPATH"] = str(Path(src).resolve())
    return env


def _replica_env(args: argparse.Namespace) -> dict[str, str]:
    if not args.read_database_url:
        return {}
    return {"THERAPY_SCHEDULER_READ_DATABASE_URL": normalize_database_url(args.read_database_url)}


def baseline_command(workers: int, port: int) -> list[str]:
    return [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


# --- wrk -----------------------------------------------------------------------------------


@dataclass
class Measured:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    socket_errors: int
    requests: int
    seconds: float
    counters: dict[str, Any]


def run_wrk(
    base: str,
    script: str,
    env: dict[str, str],
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
) -> Measured:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA / script),
            base,
            "--",
            str(threads),
        ],
        env={**os.environ, "BENCH_LUA": str(LUA), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {out.stdout[-1500:]}\n{out.stderr[-1500:]}")
    raw = json.loads(line.removeprefix("BENCHJSON "))
    return Measured(
        rps=raw["requests"] / raw["duration_s"],
        p50_ms=raw["p50_ms"],
        p95_ms=raw["p95_ms"],
        p99_ms=raw["p99_ms"],
        errors=int(raw["socket_errors"] + raw["status_errors"]),
        socket_errors=int(raw["socket_errors"]),
        requests=int(raw["requests"]),
        seconds=raw["duration_s"],
        counters=raw.get("counters") or {},
    )


def prime_etags(base: str, token: str, paths: Path, out: Path) -> int:
    """Writes "path<TAB>etag" for each request of `paths` (its answer's ETag now); returns how
    many answers had one."""
    lines = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in dict.fromkeys(paths.read_text().split()):
            r = client.get(path, headers={"Authorization": f"Bearer {token}"})
            etag = r.headers.get("etag")
            if r.status_code == 200 and etag:
                lines.append(f"{path}\t{etag}")
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def drive(
    base: str, scenario: str, env: dict[str, str], connections: int, warmup: float, seconds: float
) -> Measured:
    script = "cursor.lua" if scenario == "sessions_cursor" else "paths.lua"
    if scenario in REVALIDATE_SCENARIOS:
        script = "revalidate.lua"
    if warmup > 0:
        run_wrk(base, script, env, connections=connections, seconds=warmup)
    return run_wrk(base, script, env, connections=connections, seconds=seconds)


# --- booking -------------------------------------------------------------------------------


def booking_available(base: str, token: str) -> bool:
    """False when POST /sessions/hold does not exist yet (404 for a route-less path)."""
    response = httpx.post(
        base + "/sessions/hold", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code != 404


async def _db_now(url: str) -> datetime:
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.connect() as conn:
            value: datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
            return value
    finally:
        await engine.dispose()


DOUBLE_BOOKINGS = """
SELECT count(*) FROM sessions a JOIN sessions b
  ON a.{who}_id = b.{who}_id AND a.id <> b.id
 AND a.start_time < b.end_time AND b.start_time < a.end_time
WHERE a.created_at >= :since AND a.status <> 'cancelled' AND b.status <> 'cancelled'
"""


async def _check_and_clean(url: str, since: datetime, clean: bool) -> tuple[int, int]:
    """(double bookings among sessions created since `since`, sessions created); then removes
    what the run created so the next run finds the same free slots."""
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            doubles = 0
            for who in ("therapist", "client"):
                doubles += (
                    await conn.execute(text(DOUBLE_BOOKINGS.format(who=who)), {"since": since})
                ).scalar_one()
            created = (
                await conn.execute(
                    text("SELECT count(*) FROM sessions WHERE created_at >= :since"),
                    {"since": since},
                )
            ).scalar_one()
        if clean:
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        text("DELETE FROM sessions WHERE created_at >= :since"), {"since": since}
                    )
                    await conn.execute(
                        text("DELETE FROM holds WHERE created_at >= :since"), {"since": since}
                    )
                    # A write outside the service: new versions, so that no ETag issued during
                    # the run still matches (docs/DECISIONS.md, "Conditional requests").
                    await conn.execute(text(BUMP_EVERY_ORGANIZATION), {"stripe": 0})
            except Exception as exc:  # the booking branch may add rows that reference sessions
                console.print(f"[yellow]could not remove the booked sessions:[/yellow] {exc!r}")
        return int(doubles), int(created)
    finally:
        await engine.dispose()


def run_booking(
    base: str,
    ds: Dataset,
    token: str,
    workdir: Path,
    *,
    connections: int,
    seconds: float,
    clean: bool,
) -> Measured | None:
    if not booking_available(base, token):
        console.print(
            "[yellow]booking: endpoint missing (POST /sessions/hold answered 404); "
            "scenario skipped[/yellow]"
        )
        return None
    wanted = int(seconds * 700) + 500
    slots = asyncio.run(find_slots(ds.url, ds.organization_id, wanted, random.Random(7)))
    lines = [
        "\t".join([str(i), json.dumps(s.hold_body(), separators=(",", ":")), s.start, s.end])
        for i, s in enumerate(slots)
    ]
    path = workdir / "booking.slots"
    path.write_text("\n".join(lines) + "\n")
    since = asyncio.run(_db_now(ds.url))
    env = {"BENCH_TOKEN": token, "BENCH_SLOTS": str(path), "BENCH_RUN_ID": uuid.uuid4().hex[:12]}
    measured = run_wrk(base, "booking.lua", env, connections=connections, seconds=seconds)
    doubles, created = asyncio.run(_check_and_clean(ds.url, since, clean))
    measured.counters.update(
        candidates=len(slots), double_bookings=doubles, sessions_created=created
    )
    if measured.counters.get("exhausted"):
        console.print("[yellow]booking: every candidate slot was used before the end[/yellow]")
    return measured


# --- cancel --------------------------------------------------------------------------------

# Sessions booked per second of warm-up and measurement: more than the cancels 2 workers answer on
# the small dataset, so that the measurement does not run out (`--cancel-sessions` overrides).
CANCELS_PER_SECOND = 300


def run_cancel(
    base: str,
    ds: Dataset,
    token: str,
    workdir: Path,
    *,
    connections: int,
    warmup: float,
    seconds: float,
    sessions: int | None,
    clean: bool,
) -> Measured | None:
    """Books sessions through hold + confirm (not timed), then times POST /sessions/cancel of each,
    once, under wrk; removes what the run wrote unless `clean` is false."""
    if not booking_available(base, token):
        console.print("[yellow]cancel: POST /sessions/hold answered 404; scenario skipped[/yellow]")
        return None
    warm = int(warmup * CANCELS_PER_SECOND)
    wanted = sessions or warm + int(seconds * CANCELS_PER_SECOND)
    since = asyncio.run(_db_now(ds.url))
    try:
        found = asyncio.run(find_slots(ds.url, ds.organization_id, wanted * 2, random.Random(7)))
        slots = cancel_sessions.cancel_candidates(found, since)[:wanted]
        console.print(f"cancel: booking {len(slots):,} sessions (not timed)…")
        began = time.monotonic()
        booked = asyncio.run(cancel_sessions.book(base, token, slots))
        console.print(
            f"cancel: {len(booked.session_ids):,} booked in {time.monotonic() - began:.0f} s"
            + (f", refused {booked.refused}" if booked.refused else "")
        )
        ids = booked.session_ids
        warm = min(warm, len(ids) // 4)
        run_id = uuid.uuid4().hex[:12]
        if warm:
            first = workdir / "cancel-warmup.sessions"
            first.write_text("\n".join(ids[:warm]) + "\n")
            env = {"BENCH_TOKEN": token, "BENCH_SESSIONS": str(first), "BENCH_RUN_ID": run_id}
            run_wrk(base, "cancel.lua", env, connections=connections, seconds=warmup)
        timed = workdir / "cancel.sessions"
        timed.write_text("\n".join(ids[warm:]) + "\n")
        env = {"BENCH_TOKEN": token, "BENCH_SESSIONS": str(timed), "BENCH_RUN_ID": run_id}
        measured = run_wrk(base, "cancel.lua", env, connections=connections, seconds=seconds)
        answered = int(measured.counters.get("cancelled", 0)) + int(
            measured.counters.get("errors", 0)
        )
        # req/s of the cancels alone: the /healthz requests sent after the sessions ran out are
        # not counted.
        measured.rps = answered / measured.seconds
        measured.counters.update(
            sessions_booked=len(ids),
            cancelled_in_database=asyncio.run(cancel_sessions.settled_count(ds.url, ids)),
        )
        if measured.counters.get("exhausted"):
            console.print(
                "[yellow]cancel: every booked session was cancelled before the end "
                "(raise --cancel-sessions)[/yellow]"
            )
        return measured
    finally:
        if clean:
            asyncio.run(cancel_sessions.remove_since(ds.url, since))


# --- the run -------------------------------------------------------------------------------


def _machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cpu {model}, {platform.system()} {platform.release()}"


def _line(
    scenario: str, ds: Dataset, workers: int, connections: int, m: Measured
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "database": ds.database,
        "workers": workers,
        "connections": connections,
        "rps": round(m.rps, 1),
        "p50_ms": round(m.p50_ms, 2),
        "p95_ms": round(m.p95_ms, 2),
        "p99_ms": round(m.p99_ms, 2),
        "errors": m.errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--database-url", help="dataset database (default by mode)")
    parser.add_argument(
        "--read-database-url",
        help="a streaming replica of the dataset database: the service reads there "
        "(THERAPY_SCHEDULER_READ_DATABASE_URL; compare with a run without it)",
    )
    parser.add_argument("--quick", action="store_true", help="small dataset, short runs (< 3 min)")
    parser.add_argument("--workers", default=None, help="comma list of worker counts (1,2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--booking-connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--scenarios", default=None, help="comma list; default all")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--keep-bookings", action="store_true", help="leave booked sessions")
    parser.add_argument(
        "--cancel-sessions",
        type=int,
        default=None,
        help=f"sessions the cancel scenario books first (default {CANCELS_PER_SECOND} per second "
        "of warm-up and measurement)",
    )
    parser.add_argument(
        "--src",
        help="serve this src tree instead (PYTHONPATH), e.g. an older checkout's src, to "
        "measure the code before a change in the same sitting",
    )
    parser.add_argument("--port", type=int, default=8811)
    args = parser.parse_args(argv)

    sqlite = args.database == "sqlite"
    quick = args.quick
    if args.database_url:
        url = args.database_url
    elif sqlite:
        path = BENCH / "data" / ("small.sqlite" if quick else "bench.sqlite")
        if not path.exists():
            small = " --small" if quick else ""
            parser.error(
                f"{path} does not exist yet: build it with "
                f"bench/dataset{small} --database-url sqlite:///{path.relative_to(BENCH.parent)}"
            )
        url = f"sqlite:///{path}"
    else:
        url = f"postgresql://postgres@127.0.0.1:5432/{'ts_bench_small' if quick else 'ts_bench'}"
    url = normalize_database_url(url)
    seconds = args.duration or (5.0 if quick else 20.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    default_workers = "1" if sqlite else ("2" if quick else "1,2")
    workers_list = [int(w) for w in (args.workers or default_workers).split(",")]
    default_scenarios = ("sessions_page",) if sqlite else DEFAULT_SCENARIOS
    scenarios = args.scenarios.split(",") if args.scenarios else list(default_scenarios)
    unknown = set(scenarios) - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    with_baseline = not sqlite and not args.no_baseline
    with_pgbench = not sqlite and not args.no_pgbench

    ds = asyncio.run(_discover(url))
    settings = Settings(database_url=url)
    token = mint_token(settings, ds.admin_id, expires_in=4 * 3600)
    console.print(
        f"dataset: {ds.database}, {ds.therapists:,} therapists, {ds.sessions:,} sessions "
        f"({ds.first_day} → {ds.last_day}); {seconds:.0f} s per measurement, "
        f"{args.connections} connections, workers {workers_list}"
    )
    rng = random.Random(11)
    lines: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as tmp:
        workdir = Path(tmp)
        envs: dict[str, dict[str, str]] = {}
        for scenario in scenarios:
            if scenario in READ_SCENARIOS:
                paths = workdir / f"{scenario}.paths"
                paths.write_text("\n".join(scenario_paths(scenario, ds, rng)) + "\n")
                envs[scenario] = {"BENCH_TOKEN": token, "BENCH_PATHS": str(paths)}
            elif scenario in REVALIDATE_SCENARIOS:
                paths = workdir / f"{scenario}.requests"
                requests = scenario_paths(
                    REVALIDATE_SCENARIOS[scenario], ds, rng, count=REVALIDATE_PATHS
                )
                paths.write_text("\n".join(requests) + "\n")
                tagged = workdir / f"{scenario}.paths"
                envs[scenario] = {"BENCH_TOKEN": token, "BENCH_PATHS": str(tagged)}
        reads = [s for s in scenarios if s in READ_SCENARIOS]
        tps: dict[str, float] = {}
        if with_pgbench:
            for scenario in reads:
                console.print(f"pgbench {scenario}…")
                tps[scenario] = run_pgbench(
                    scenario, ds, workdir, args.connections, max(3, round(seconds))
                )
        for workers in workers_list:
            baseline: dict[str, Measured] = {}
            if with_baseline and reads:
                with serving(
                    baseline_command(workers, args.port + 1),
                    {"BENCH_DATABASE_URL": url},
                    args.port + 1,
                    workdir / f"baseline-{workers}.log",
                ) as base:
                    for scenario in reads:
                        console.print(f"baseline {scenario} ({workers} workers)…")
                        baseline[scenario] = drive(
                            base, scenario, envs[scenario], args.connections, warmup, seconds
                        )
            with serving(
                service_command(workers, args.port),
                {**service_env(ds, args.src), **_replica_env(args)},
                args.port,
                workdir / f"service-{workers}.log",
            ) as base:
                for scenario in scenarios:
                    console.print(f"service {scenario} ({workers} workers)…")
                    if scenario == CANCEL_SCENARIO:
                        if sqlite:
                            console.print("[yellow]cancel runs on PostgreSQL only[/yellow]")
                            continue
                        m = run_cancel(
                            base,
                            ds,
                            token,
                            workdir,
                            connections=args.connections,
                            warmup=warmup,
                            seconds=seconds,
                            sessions=args.cancel_sessions,
                            clean=not args.keep_bookings,
                        )
                        if m is None:
                            continue
                        line = _line(scenario, ds, workers, args.connections, m)
                        line.update(
                            cancelled=int(m.counters.get("cancelled", 0)),
                            cancelled_in_database=int(m.counters["cancelled_in_database"]),
                            sessions_booked=int(m.counters["sessions_booked"]),
                            exhausted=bool(m.counters.get("exhausted")),
                            errors=m.socket_errors + int(m.counters.get("errors", 0)),
                            error_codes=m.counters.get("codes") or {},
                        )
                    elif scenario in BOOKING_SCENARIOS:
                        if sqlite:
                            console.print("[yellow]booking runs on PostgreSQL only[/yellow]")
                            continue
                        booking_workers = workers
                        if scenario != "booking":
                            booking_workers = MULTI_PROCESS_WORKERS
                            m = _booking_elsewhere(
                                args,
                                ds,
                                token,
                                workdir,
                                seconds,
                                via_pgbouncer=scenario == "booking_4proc_pgbouncer",
                            )
                        else:
                            m = run_booking(
                                base,
                                ds,
                                token,
                                workdir,
                                connections=args.booking_connections,
                                seconds=seconds,
                                clean=not args.keep_bookings,
                            )
                        if m is None:
                            continue
                        line = _line(scenario, ds, booking_workers, args.booking_connections, m)
                        line.update(
                            bookings=int(m.counters.get("bookings", 0)),
                            bookings_per_s=round(m.counters.get("bookings", 0) / m.seconds, 1),
                            conflicts=int(m.counters.get("conflicts", 0)),
                            double_bookings=int(m.counters["double_bookings"]),
                            # 409s are the expected conflicts, not errors.
                            errors=m.socket_errors + int(m.counters.get("errors", 0)),
                            error_codes=m.counters.get("codes") or {},
                            candidates=m.counters["candidates"],
                        )
                    else:
                        if scenario in REVALIDATE_SCENARIOS:
                            requests = workdir / f"{scenario}.requests"
                            tagged = Path(envs[scenario]["BENCH_PATHS"])
                            if not prime_etags(base, token, requests, tagged):
                                console.print(f"[red]{scenario}: no answer had an ETag[/red]")
                                continue
                        m = drive(base, scenario, envs[scenario], args.connections, warmup, seconds)
                        line = _line(scenario, ds, workers, args.connections, m)
                        if scenario in REVALIDATE_SCENARIOS:
                            line["not_modified"] = int(m.counters.get("not_modified", 0))
                            line["answered"] = int(m.counters.get("answered", 0))
                        b = baseline.get(scenario)
                        line["baseline_rps"] = round(b.rps, 1) if b else None
                        line["ratio"] = round(m.rps / b.rps, 3) if b and b.rps else None
                        line["pgbench_tps"] = tps.get(scenario)
                    line.update(
                        dataset_sessions=ds.sessions,
                        duration_s=round(m.seconds, 1),
                        date=stamp,
                        machine=_machine(),
                    )
                    lines.append(line)
                    print(json.dumps(line), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    _table(lines)
    return 0


def _booking_elsewhere(
    args: argparse.Namespace,
    ds: Dataset,
    token: str,
    workdir: Path,
    seconds: float,
    *,
    via_pgbouncer: bool = False,
) -> Measured | None:
    """The booking scenario against a second service of MULTI_PROCESS_WORKERS processes (connected
    through a PgBouncer in transaction pooling mode with `via_pgbouncer`)."""
    port = args.port + 2
    with contextlib.ExitStack() as stack:
        env = {**service_env(ds, args.src), **_replica_env(args)}
        name = f"service-{MULTI_PROCESS_WORKERS}proc"
        if via_pgbouncer:
            through = stack.enter_context(pgbouncer(ds.url))
            env.update(
                THERAPY_SCHEDULER_DATABASE_URL=through, THERAPY_SCHEDULER_DB_PGBOUNCER="true"
            )
            name += "-pgbouncer"
        other = stack.enter_context(
            serving(
                service_command(MULTI_PROCESS_WORKERS, port), env, port, workdir / f"{name}.log"
            )
        )
        return run_booking(
            other,
            ds,
            token,
            workdir,
            connections=args.booking_connections,
            seconds=seconds,
            clean=not args.keep_bookings,
        )


def _table(lines: list[dict[str, Any]]) -> None:
    table = Table(title="therapy-scheduler benchmark")
    for name in (
        "scenario",
        "db",
        "workers",
        "conns",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "baseline req/s",
        "ratio",
        "pgbench tps",
        "bookings / conflicts / double",
    ):
        table.add_column(name, justify="left" if name in ("scenario", "db") else "right")

    def fmt(value: Any, digits: int = 1) -> str:
        if value is None:
            return "-"
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"

    for x in lines:
        table.add_row(
            x["scenario"],
            x["database"],
            str(x["workers"]),
            str(x["connections"]),
            fmt(x["rps"]),
            fmt(x["p50_ms"], 2),
            fmt(x["p95_ms"], 2),
            fmt(x["p99_ms"], 2),
            fmt(x["errors"]),
            fmt(x.get("baseline_rps")),
            fmt(x.get("ratio"), 2),
            fmt(x.get("pgbench_tps")),
            f"{x['bookings']:,} / {x['conflicts']:,} / {x['double_bookings']}"
            if "bookings" in x
            else "-",
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
