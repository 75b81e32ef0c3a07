"""Cost of the request rate limiter per request, the current code against the code at a git ref.

    .venv/bin/python -m bench.ratelimit_cost --ref main               # memory and Redis
    .venv/bin/python -m bench.ratelimit_cost --ref 9e2dce8 --rounds 7 --hits 2000
    .venv/bin/python -m bench.ratelimit_cost --stores memory --scenarios middleware

Both versions' `infra/ratelimit.py` are loaded in one process (`bench/versions.py`) and timed
alternately, round after round, each scenario on new counters of each version, so that both see the
same load from neighbours. Stores: `memory` (the counters of one process) and `redis` (`--redis-url`,
default redis://127.0.0.1:6379/15; keys under a fresh prefix, deleted afterwards). Scenarios, `--hits`
requests each:

* `allowed`  - requests of 20 users (limit 600/min, none reaches it): the cost every request pays;
* `refused`  - one user over a limit of 5: the cost of each 429 (with its Retry-After);
* `clients`  - every request from another address (limit 60/min): many keys, as with per-IP limits
  (the addresses of earlier rounds stay in the window: the last round runs with rounds * hits keys);
* `middleware` - `allowed` through the whole ASGI `RateLimitMiddleware` (bearer token -> user) in
  front of an app that answers 204, as a request sees it.

Per request: CPU us of this process (`time.process_time`, all threads), wall us (requests one after
another: the latency added, Redis round trips included), and for Redis the commands Redis ran (scripts
count with the commands inside them), the scripts called (`EVALSHA`, one round trip each) and Redis's
own CPU us (`INFO cpu`). Each figure is the median of the rounds; one JSON line per measurement goes to
`--out` (default bench/results/ratelimit_cost.jsonl).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import redis.asyncio as aioredis

from bench.versions import module_at
from therapy_scheduler.infra import ratelimit as new_ratelimit

SCENARIOS = ("allowed", "refused", "clients", "middleware")
USERS = 20


def _counter(module: ModuleType, store: str, url: str, prefix: str) -> Any:
    return module.RedisCounter(url, prefix) if store == "redis" else module.MemoryCounter()


async def _settle() -> None:
    """Let the tasks a counter started in the background (expiry sweeps) finish: their CPU counts."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        await asyncio.gather(*others, return_exceptions=True)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _subject(token: str) -> str | None:
    return token  # the token is the user: the cost of verifying a JWT is not the limiter's


def _requests(module: ModuleType, counter: Any, scenario: str, hits: int) -> Callable[[], Any]:
    """A coroutine function sending `hits` requests of the scenario through `counter`."""
    run = uuid.uuid4().hex[:8]  # fresh keys every round: each round starts from empty windows
    if scenario == "allowed":

        async def allowed() -> int:
            refused = 0
            for i in range(hits):
                refused += not (await counter.hit(f"u:{run}:{i % USERS}", 600)).allowed
                await asyncio.sleep(0)
            return refused

        return allowed
    if scenario == "refused":

        async def refused() -> int:
            count = 0
            for _ in range(hits):
                count += not (await counter.hit(f"u:{run}", 5)).allowed
                await asyncio.sleep(0)
            return count

        return refused
    if scenario == "clients":

        async def clients() -> int:
            refused = 0
            for i in range(hits):
                refused += not (await counter.hit(f"ip:{run}:{i}", 60)).allowed
                await asyncio.sleep(0)
            return refused

        return clients
    middleware = module.RateLimitMiddleware(
        _app, counter=counter, subject=_subject, per_user=600, per_ip=60
    )
    sent: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scopes = [
        {
            "type": "http",
            "path": "/get-sessions-optimized",
            "headers": [(b"authorization", f"Bearer {run}-{u}".encode())],
            "client": ("203.0.113.7", 50000),
            "state": {},
        }
        for u in range(USERS)
    ]

    async def through_middleware() -> int:
        sent.clear()
        for i in range(hits):
            await middleware(scopes[i % USERS], receive, send)
            await asyncio.sleep(0)
        return sum(status != 204 for status in sent)

    return through_middleware


async def _redis_stats(admin: aioredis.Redis) -> tuple[int, int, float]:
    commands = await admin.info("commandstats")
    cpu = await admin.info("cpu")
    total = sum(int(v["calls"]) for k, v in commands.items() if k != "cmdstat_info")
    scripts = sum(
        int(commands.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval")
    )
    return total, scripts, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _measure(
    requests: Callable[[], Awaitable[int]], admin: aioredis.Redis | None, hits: int
) -> dict[str, float]:
    before = await _redis_stats(admin) if admin else None
    cpu, wall = time.process_time(), time.perf_counter()
    refused = await requests()
    await _settle()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out = {"cpu_us": cpu / hits * 1e6, "wall_us": wall / hits * 1e6, "refused": refused}
    if admin and before:
        after = await _redis_stats(admin)
        out["redis_commands"] = (after[0] - before[0]) / hits
        out["redis_scripts"] = (after[1] - before[1]) / hits
        out["redis_cpu_us"] = (after[2] - before[2]) / hits * 1e6
    return out


async def _run(args: argparse.Namespace, load: str) -> list[dict[str, Any]]:
    old = module_at(args.ref, "src/therapy_scheduler/infra/ratelimit.py", "old_ratelimit")
    versions = {args.ref: old, "tree": new_ratelimit}
    records: list[dict[str, Any]] = []
    print(f"load {load}; {args.hits} requests per measurement, median of {args.rounds} rounds")
    header = f"{'store':6} {'scenario':10} {'version':8} {'cpu µs':>8} {'wall µs':>8} {'429s':>5}"
    print(header + f" {'cmds':>5} {'scripts':>7} {'redis µs':>8}")
    for store in args.stores.split(","):
        admin = aioredis.Redis.from_url(args.redis_url) if store == "redis" else None
        prefix = f"ts:bench:{uuid.uuid4().hex[:8]}"
        try:
            for scenario in args.scenarios.split(","):
                counters = {
                    v: _counter(m, store, args.redis_url, f"{prefix}:{v}")
                    for v, m in versions.items()
                }
                rows: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
                for name, module in versions.items():  # warm-up: scripts loaded, connections open
                    await _measure(_requests(module, counters[name], scenario, 50), admin, 50)
                for _ in range(args.rounds):
                    for name, module in versions.items():
                        requests = _requests(module, counters[name], scenario, args.hits)
                        rows[name].append(await _measure(requests, admin, args.hits))
                for name in versions:
                    med = {k: statistics.median(r[k] for r in rows[name]) for k in rows[name][0]}
                    line = (
                        f"{store:6} {scenario:10} {name[:8]:8} {med['cpu_us']:8.1f} "
                        f"{med['wall_us']:8.1f} {med['refused']:5.0f}"
                    )
                    if store == "redis":
                        line += (
                            f" {med['redis_commands']:5.1f} {med['redis_scripts']:7.2f}"
                            f" {med['redis_cpu_us']:8.1f}"
                        )
                    print(line, flush=True)
                    records.append(
                        {
                            "store": store,
                            "scenario": scenario,
                            "code": name,
                            "hits": args.hits,
                            "rounds": args.rounds,
                            "load": float(load),
                            "date": datetime.now(UTC).isoformat(timespec="seconds"),
                            **{k: round(v, 2) for k, v in med.items()},
                        }
                    )
                for counter in counters.values():
                    await counter.close()
        finally:
            if admin:
                keys = [k async for k in admin.scan_iter(f"{prefix}:*")]
                if keys:
                    await admin.delete(*keys)
                await admin.aclose()
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main", help="git ref of the old code (default main)")
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hits", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--out", default="bench/results/ratelimit_cost.jsonl")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[0]
    records = asyncio.run(_run(args, load))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
