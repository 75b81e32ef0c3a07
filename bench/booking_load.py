"""Booking throughput: N concurrent clients doing hold + confirm against a running server.

Run against `therapy-scheduler serve` on a demo database, with a scheduler's token:

    THERAPY_SCHEDULER_RATE_LIMIT_USER=off therapy-scheduler serve --port 8000 &
    TOKEN=$(therapy-scheduler token --email scheduler@demo.brightsteps.example)
    python -m bench.booking_load --url http://127.0.0.1:8000 --token "$TOKEN" --clients 16

Each client picks a therapist and one of their free slots (read once from get-schedule-data-batch at
the start, so slots run out and clients collide), a random active client, holds a 60-minute 97153
session and confirms it. A refused hold (409) counts as a conflict and the client retries with another
pick. The summary (JSON on stdout) gives bookings/s, conflicts by code, retries and latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx


@dataclass
class Stats:
    bookings: int = 0
    attempts: int = 0
    conflicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


async def _inventory(
    http: httpx.AsyncClient, days: int, therapists: int
) -> tuple[dict[str, list[str]], list[str]]:
    """Free quarter-hour starts (60 minutes free after them) per therapist, and active client ids."""
    r = await http.get("/get-dropdown-data", params={"types": "therapists,clients"})
    r.raise_for_status()
    data = r.json()["data"]
    therapist_ids = [t["id"] for t in data["therapists"] if t["status"] == "active"][:therapists]
    client_ids = [c["id"] for c in data["clients"] if c["status"] == "active"]
    first = date.today() + timedelta(days=2)
    r = await http.post(
        "/get-schedule-data-batch",
        json={
            "start_date": first.isoformat(),
            "end_date": (first + timedelta(days=days - 1)).isoformat(),
            "therapist_ids": therapist_ids,
            "include_availability": True,
            "batch_size": 1,
        },
    )
    r.raise_for_status()
    starts: dict[str, list[str]] = {}
    for entry in r.json()["data"]["availability"]:
        for free in entry["free_slots"]:
            start = datetime.fromisoformat(free["start_time"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(free["end_time"].replace("Z", "+00:00"))
            start += timedelta(minutes=(-start.minute) % 15)
            while start + timedelta(minutes=60) <= end:
                starts.setdefault(entry["therapist_id"], []).append(
                    start.strftime("%Y-%m-%dT%H:%M:%SZ")
                )
                start += timedelta(minutes=15)
    return starts, client_ids


async def _client(
    seed: int,
    http: httpx.AsyncClient,
    starts: dict[str, list[str]],
    clients: list[str],
    deadline: float,
    stats: Stats,
) -> None:
    rng = random.Random(seed)
    therapists = list(starts)
    while time.monotonic() < deadline:
        therapist = rng.choice(therapists)
        start = rng.choice(starts[therapist])
        began = time.perf_counter()
        stats.attempts += 1
        r = await http.post(
            "/sessions/hold",
            json={
                "session": {
                    "therapist_id": therapist,
                    "client_id": rng.choice(clients),
                    "start_time": start,
                    "service_code": "97153",
                },
                "duration_minutes": 60,
                "time_zone": "UTC",
            },
        )
        if r.status_code != 200:
            body: dict[str, Any] = r.json()
            (stats.conflicts if r.status_code == 409 else stats.errors)[body["code"]] += 1
            continue
        held = r.json()
        r = await http.post(
            "/sessions/confirm",
            json={"hold_key": held["hold_key"], "session": held["occurrences"][0]},
        )
        if r.status_code != 200:
            stats.errors[f"confirm:{r.json().get('code')}"] += 1
            continue
        stats.bookings += 1
        stats.latencies_ms.append((time.perf_counter() - began) * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--days", type=int, default=10, help="days of slots to draw from")
    parser.add_argument("--therapists", type=int, default=20, help="therapists to draw from")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=60, limits=limits
    ) as http:
        starts, clients = await _inventory(http, args.days, args.therapists)
        stats = Stats()
        began = time.monotonic()
        deadline = began + args.duration
        await asyncio.gather(
            *(_client(i, http, starts, clients, deadline, stats) for i in range(args.clients))
        )
        elapsed = time.monotonic() - began
    lat = sorted(stats.latencies_ms)
    summary = {
        "label": args.label,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "bookings": stats.bookings,
        "bookings_per_second": round(stats.bookings / elapsed, 1),
        "hold_attempts": stats.attempts,
        "retries_after_conflict": stats.attempts - stats.bookings - sum(stats.errors.values()),
        "conflicts": dict(stats.conflicts),
        "errors": dict(stats.errors),
        "latency_ms_hold_plus_confirm": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p95": round(lat[int(len(lat) * 0.95) - 1], 1) if lat else None,
        },
        "free_slot_starts": sum(len(v) for v in starts.values()),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
