"""The demo clinic's sessions: each therapist's days filled around `today` from their caseload."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from therapy_scheduler.kit.time import resolve_local_lenient


def demo_sessions(
    rng: random.Random,
    staff: list[dict[str, Any]],
    people: list[dict[str, Any]],
    authorizations: list[dict[str, Any]],
    locations: list[dict[str, Any]],
    clinics: list[dict[str, Any]],
    weeks: int,
    today: date,
) -> list[dict[str, Any]]:
    caseload: dict[str, list[dict[str, Any]]] = {}
    for c in people:
        if c["status"] == "active":
            for tid in c["therapist_ids"]:
                caseload.setdefault(tid, []).append(c)
    auth_of = {a["client_id"]: a for a in authorizations}
    client_busy: dict[str, list[tuple[datetime, datetime]]] = {}
    home_base = {t["id"]: rng.choice(clinics) for t in staff}
    now = datetime.now(ZoneInfo("UTC"))
    out: list[dict[str, Any]] = []
    first = today - timedelta(days=7 * (weeks // 2))
    for offset in range(7 * weeks):
        day = first + timedelta(days=offset)
        for t in staff:
            if t["status"] != "active" or not caseload.get(t["id"]):
                continue
            tz = ZoneInfo(t["time_zone"])
            windows = [w for w in t["availability"] if w["weekday"] == day.strftime("%A").lower()]
            bcba = t["credential"] == "BCBA"
            for w in windows:
                cursor = datetime.combine(day, time.fromisoformat(w["start"]))
                stop = datetime.combine(day, time.fromisoformat(w["end"]))
                while True:
                    minutes = rng.choice([60, 90]) if bcba else rng.choice([120, 150, 180])
                    if cursor + timedelta(minutes=minutes) > stop:
                        break
                    if rng.random() < 0.25:
                        cursor += timedelta(minutes=30)
                        continue
                    start = resolve_local_lenient(cursor, tz)
                    end = resolve_local_lenient(cursor + timedelta(minutes=minutes), tz)
                    client = _free_client(rng, caseload[t["id"]], client_busy, start, end)
                    if client is not None:
                        client_busy.setdefault(client["id"], []).append((start, end))
                        out.append(
                            _session(
                                rng, t, client, auth_of, locations, home_base, start, end, bcba, now
                            )
                        )
                    cursor += timedelta(minutes=minutes + (15 if bcba else 30))
    return out


def _free_client(
    rng: random.Random,
    candidates: list[dict[str, Any]],
    busy: dict[str, list[tuple[datetime, datetime]]],
    start: datetime,
    end: datetime,
) -> dict[str, Any] | None:
    for client in rng.sample(candidates, len(candidates)):
        if all(not (s < end and start < e) for s, e in busy.get(client["id"], [])):
            return client
    return None


def _session(
    rng: random.Random,
    therapist: dict[str, Any],
    client: dict[str, Any],
    auth_of: dict[str, dict[str, Any]],
    locations: list[dict[str, Any]],
    home_base: dict[str, dict[str, Any]],
    start: datetime,
    end: datetime,
    bcba: bool,
    now: datetime,
) -> dict[str, Any]:
    if end <= now:
        status = rng.choices(["completed", "cancelled", "no_show"], [88, 8, 4])[0]
    elif start <= now:
        status = "in_progress"
    else:
        status = rng.choices(["scheduled", "cancelled"], [95, 5])[0]
    place = rng.random()
    if place < 0.6:
        location: dict[str, Any] | None = home_base[therapist["id"]]
    elif place < 0.75:
        location = next(loc for loc in locations if loc["location_type"] == "school")
    elif place < 0.85:
        location = next(loc for loc in locations if loc["location_type"] == "telehealth")
    else:
        location = None  # the client's home
    service = ("97156" if rng.random() < 0.2 else "97155") if bcba else "97153"
    auth = auth_of.get(client["id"])
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "therapist_id": therapist["id"],
        "client_id": client["id"],
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "status": status,
        "location_type": location["location_type"] if location else "home",
        "location_id": location["id"] if location else None,
        "service_code": service,
        "authorization_id": auth["id"] if auth else None,
        "notes": None,
    }
