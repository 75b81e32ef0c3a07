"""Two or more versions of the code served in-process and taking turns request by request, so that
every version sees the same load: on a shared machine, runs one after the other drift with the
other work more than a change moves them.

    .venv/bin/python -m bench.lockstep --database-url URL --scenario schedule_week --count 100 \\
        --src old=/tmp/old/src --src new=src

Each `--src NAME=DIR` is a tree's `src` (put first on `PYTHONPATH` of a process started by this
venv, with this checkout's harness, as `bench.cpu --src` does); each serves the bench's paths in
its own process (`--serve`, the requests of `bench.inprocess`, as admin), one request at a time,
in turn (the order reversed every other request). Printed per version: API CPU and wall per
request (mean, median, tenth percentile) and statements per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from sqlalchemy import event

from bench.harness import _discover, scenario_paths
from bench.inprocess import SCENARIOS
from therapy_scheduler.app import create_app
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, normalize_database_url


async def _serve(url: str, scenario: str, seed: int) -> None:
    """Answer each line `i` on stdin with path `i`'s request: "cpu_ms wall_ms statements"."""
    url = normalize_database_url(url)
    ds = await _discover(url)
    settings = Settings(
        database_url=url, rate_limit_user="off", rate_limit_ip="off", log_level="WARNING"
    )
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {mint_token(settings, ds.admin_id, expires_in=4 * 3600)}"}
    paths = scenario_paths(scenario, ds, random.Random(seed))
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        for path in paths[:20]:  # warm-up: caches, prepared statements, pool
            await client.get(path, headers=headers)
        db = app.state.db
        for engine in {id(e): e for e in (db.reader, db.writer, db.primary_reader) if e}.values():
            event.listen(engine.sync_engine, "after_cursor_execute", count)
        print("ready", flush=True)
        for line in sys.stdin:
            path = paths[int(line) % len(paths)]
            statements = 0
            cpu, wall = time.process_time(), time.perf_counter()
            response = await client.get(path, headers=headers)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code}")
            print(f"{cpu * 1000:.3f} {wall * 1000:.3f} {statements}", flush=True)


_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start(name: str, src: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=f"{os.path.abspath(src)}{os.pathsep}{_CHECKOUT}")
    command = [sys.executable, "-m", "bench.lockstep", "--serve"]
    command += ["--database-url", args.database_url, "--scenario", args.scenario]
    command += ["--seed", str(args.seed)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=_CHECKOUT,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit(f"{name} did not start")
    return process


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"mean {statistics.mean(ordered):.2f} median {statistics.median(ordered):.2f} "
        f"p10 {ordered[len(ordered) // 10]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.lockstep", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="schedule_week",
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--src", action="append", default=[], help="NAME=DIR, two or more")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.database_url, args.scenario, args.seed))
        return 0
    if len(args.src) < 2:
        parser.error("give at least two --src NAME=DIR")
    processes = {}
    for spec in args.src:
        name, src = spec.split("=", 1)
        processes[name] = _start(name, src, args)
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in processes}
    load = os.getloadavg()
    for i in range(args.count):
        order = list(processes) if i % 2 == 0 else list(reversed(processes))
        for name in order:
            process = processes[name]
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(f"{i}\n")
            process.stdin.flush()
            cpu, wall, statements = process.stdout.readline().split()
            results[name].append((float(cpu), float(wall), int(statements)))
    for name, rows in results.items():
        print(
            f"{name}: CPU {_summary([r[0] for r in rows])} ms | wall "
            f"{_summary([r[1] for r in rows])} ms | "
            f"{statistics.mean(r[2] for r in rows):.2f} statements per request"
        )
    print(f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    for process in processes.values():
        assert process.stdin is not None
        process.stdin.close()
        process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
