"""CPU time per request of a one-worker service under wrk: the measure that neighbours on a shared
machine disturb least. With several `--src` trees (e.g. an old checkout's `src`), the versions are
served side by side and measured alternately, so that both see the same load.

    .venv/bin/python -m bench.cpu --database-url URL --scenario sessions_page
    .venv/bin/python -m bench.cpu --database-url URL --src old=/tmp/old/src --src new=src --rounds 3
    .venv/bin/python -m bench.cpu --database-url URL --baseline --rounds 3   # beside the baseline app

Each measurement: wrk (16 connections) for `--warmup` then `--duration` seconds; the server's
utime + stime (`/proc/<pid>/stat`, every process of its group) during the measurement divided by the
requests wrk completed. Beside it, per request: PostgreSQL's CPU (every process named `postgres`:
the backends, the WAL writer, the checkpointer; 0 on SQLite, which runs inside the server) and the
whole machine's busy CPU (`/proc/stat`, wrk included). Prints one JSON line per measurement with the
1-minute load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.harness import (
    _discover,
    baseline_command,
    drive,
    scenario_paths,
    service_command,
    service_env,
    serving,
)
from bench.inprocess import _machine_busy
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(counts: Callable[[str, list[str]], bool]) -> float:
    """utime + stime of every live process for which `counts(comm, fields)` holds (`fields`: the
    fields of `/proc/<pid>/stat` after "comm)": state, ppid, pgrp, ...)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, IndexError, ValueError):
            continue
        fields = rest.split()
        if counts(comm, fields):
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in process group `pgid`."""
    return _cpu_seconds(lambda _comm, fields: int(fields[2]) == pgid)


def _postgres_cpu_seconds() -> float:
    """utime + stime of every live process named `postgres` (the server and its backends)."""
    return _cpu_seconds(lambda comm, _fields: comm == "postgres")


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--scenario", default="sessions_page")
    parser.add_argument("--src", action="append", help="label=path of a src tree (repeatable)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--port", type=int, default=8841)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also serve bench/baseline_app.py (1 worker) and measure it in turn (PostgreSQL)",
    )
    args = parser.parse_args(argv)

    url = normalize_database_url(args.database_url)
    ds = asyncio.run(_discover(url))
    token = mint_token(Settings(database_url=url), ds.admin_id, expires_in=4 * 3600)
    trees = [s.split("=", 1) for s in (args.src or ["current=src"])]
    with tempfile.TemporaryDirectory(prefix="ts-cpu-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        paths = workdir / "paths"
        paths.write_text("\n".join(scenario_paths(args.scenario, ds, random.Random(11))) + "\n")
        env = {"BENCH_TOKEN": token, "BENCH_PATHS": str(paths)}
        servers = []
        for i, (label, src) in enumerate(trees):
            port = args.port + i
            server_env = {**service_env(ds), "PYTHONPATH": str(Path(src).resolve())}
            log = workdir / f"{label}.log"
            base = stack.enter_context(serving(service_command(1, port), server_env, port, log))
            servers.append((label, base))
        if args.baseline:
            port = args.port + len(trees)
            log = workdir / "baseline.log"
            command = baseline_command(1, port)
            base = stack.enter_context(serving(command, {"BENCH_DATABASE_URL": url}, port, log))
            servers.append(("baseline", base))
        for _ in range(args.rounds):
            for label, base in servers:
                pgid = _server_group(base)
                load = _load()
                if args.warmup:
                    drive(base, args.scenario, env, args.connections, 0, args.warmup)
                before = _group_cpu_seconds(pgid), _postgres_cpu_seconds(), _machine_busy()
                measured = drive(base, args.scenario, env, args.connections, 0, args.duration)
                used, database, machine = (
                    after - start
                    for after, start in zip(
                        (_group_cpu_seconds(pgid), _postgres_cpu_seconds(), _machine_busy()),
                        before,
                        strict=True,
                    )
                )
                per_request = 1000 / max(measured.requests, 1)
                line = {
                    "code": label,
                    "scenario": args.scenario,
                    "database": ds.database,
                    "requests": measured.requests,
                    "rps": round(measured.rps, 1),
                    "p50_ms": measured.p50_ms,
                    "p99_ms": measured.p99_ms,
                    "errors": measured.errors,
                    "cpu_ms_per_request": round(used * per_request, 2),
                    "postgres_cpu_ms_per_request": round(database * per_request, 2),
                    "machine_cpu_ms_per_request": round(machine * per_request, 2),
                    "load_before": load,
                    "load_after": _load(),
                }
                print(json.dumps(line), flush=True)
    return 0


def _server_group(base: str) -> int:
    """The process group of the server listening on `base` (serving() starts each in its own)."""
    port = base.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        serves = b"serve" in cmdline or b"bench.baseline_app:app" in cmdline
        if serves and port.encode() in cmdline:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[2])
    raise SystemExit(f"no server process found for {base}")


if __name__ == "__main__":
    raise SystemExit(main())
