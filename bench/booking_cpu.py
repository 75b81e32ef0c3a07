"""CPU per booking under wrk, as `bench/run`'s booking scenario books (`booking.lua`, 2 API workers,
32 connections): the API processes, this database's PostgreSQL backends and wrk itself, each
divided by the sessions booked, so that the ceiling of bookings/s on this machine is their sum
divided into the cores (docs/PERFORMANCE.md, "What limits each figure": booking). With several
`--src` trees the versions are served and measured alternately. Writes bookings: use a private
copy of the dataset; what it books is removed afterwards.

    .venv/bin/python -m bench.booking_cpu --database-url postgresql://…/ts_mine \\
        --src old=/tmp/old/src --src new=src --rounds 4

Prints one JSON line per measurement with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
from pathlib import Path

from bench.booking_inprocess import _backend_cpu
from bench.cpu import _group_cpu_seconds, _server_group
from bench.harness import _discover, run_booking, service_command, service_env, serving
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url


def _children_cpu() -> float:
    """utime + stime of the child processes reaped so far (wrk, once its run has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.booking_cpu", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--src", action="append", default=[], help="name=path of a src tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8731)
    args = parser.parse_args(argv)
    ds = asyncio.run(_discover(normalize_database_url(args.database_url)))
    token = mint_token(Settings(database_url=ds.url), ds.admin_id, expires_in=4 * 3600)
    versions = [s.split("=", 1) for s in args.src] or [["current", ""]]
    for round_ in range(args.rounds):
        for name, src in versions:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                command = service_command(args.workers, args.port)
                env = service_env(ds, src or None)
                with serving(command, env, args.port, work / "server.log") as base:
                    group = _server_group(base)
                    run_booking(
                        base,
                        ds,
                        token,
                        work,
                        connections=args.connections,
                        seconds=args.warmup,
                        clean=True,
                    )
                    load = os.getloadavg()[0]
                    api0 = _group_cpu_seconds(group)
                    backends = asyncio.run(_backend_cpu(args.database_url))
                    wrk0 = _children_cpu()
                    measured = run_booking(
                        base,
                        ds,
                        token,
                        work,
                        connections=args.connections,
                        seconds=args.duration,
                        clean=True,
                    )
                    wrk = _children_cpu() - wrk0
                    api = _group_cpu_seconds(group) - api0
                    database = asyncio.run(_backend_cpu(args.database_url, backends))
            if measured is None:
                return 1
            booked = int(measured.counters.get("sessions_created") or 0)
            n = max(booked, 1)
            print(
                json.dumps(
                    {
                        "round": round_,
                        "code": name,
                        "load": round(load, 2),
                        "bookings": booked,
                        "bookings_per_s": round(booked / args.duration, 1),
                        "double_bookings": measured.counters.get("double_bookings"),
                        "api_ms": round(api / n * 1000, 2),
                        "backends_ms": round((database or 0.0) / n * 1000, 2),
                        "wrk_ms": round(wrk / n * 1000, 2),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
