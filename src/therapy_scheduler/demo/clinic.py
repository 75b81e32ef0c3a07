"""A realistic demo clinic, built as an import document so that it goes through the same import path
as a clinic's own data. Deterministic for a given seed and day."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from therapy_scheduler.kit.time import resolve_local_lenient

FIRST = [
    "Avery",
    "Blake",
    "Casey",
    "Dana",
    "Elliot",
    "Finley",
    "Gray",
    "Harper",
    "Indy",
    "Jordan",
    "Kendall",
    "Logan",
    "Morgan",
    "Noel",
    "Oakley",
    "Parker",
    "Quinn",
    "Riley",
    "Sawyer",
    "Taylor",
    "Umi",
    "Vesper",
    "Wren",
    "Xen",
    "Yael",
    "Zion",
    "Ari",
    "Bellamy",
    "Cameron",
    "Devon",
    "Emery",
    "Frankie",
    "Greer",
    "Hollis",
    "Jules",
    "Kai",
    "Lane",
    "Marlow",
    "Nico",
    "Oren",
    "Perry",
    "Reese",
    "Sage",
    "Tatum",
]
LAST = [
    "Abbott",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Murphy",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quintero",
    "Rossi",
    "Silva",
    "Tanaka",
    "Usman",
    "Varga",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
    "Alvarez",
    "Brooks",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Flores",
    "Greene",
    "Haddad",
    "Ito",
    "Jovanovic",
    "Kim",
    "Larsen",
]

DEMO_ORG_ID = uuid.UUID("5e1f6f3c-7a0b-4c8e-9d2a-000000000001")


@dataclass(frozen=True)
class DemoUsers:
    admin: str = "admin@demo.brightsteps.example"
    scheduler: str = "scheduler@demo.brightsteps.example"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def build_demo(
    *, therapists: int = 25, clients: int = 120, weeks: int = 8, seed: int = 7, today: date
) -> dict[str, Any]:
    """An import document for "Bright Steps ABA": locations, staff with weekly hours, clients with
    caseloads and authorizations, and `weeks` weeks of sessions centred on `today`."""
    rng = random.Random(seed)
    org_tz = "America/New_York"
    org = {
        "id": str(DEMO_ORG_ID),
        "name": "Bright Steps ABA",
        "time_zone": org_tz,
        "settings": {
            "hold_seconds_default": 300,
            "availability_policy": "block",
            "authorization_policy": "block",
            "buffer_minutes": 15,
            "default_service_code": "97153",
            "default_cancellation_policy": "standard",
            "cancellation_policies": [
                {"name": "standard", "notice_hours": 24, "release_units_on_late_cancel": True},
                {"name": "strict", "notice_hours": 48, "release_units_on_late_cancel": False},
            ],
        },
    }
    locations = [
        {
            "id": _uuid(rng),
            "organization_id": org["id"],
            "name": name,
            "location_type": kind,
            "is_active": active,
        }
        for name, kind, active in (
            ("Bright Steps Riverside Clinic", "clinic", True),
            ("Bright Steps Oak Park Clinic", "clinic", True),
            ("Bright Steps Harbor Clinic", "clinic", True),
            ("Maplewood Elementary", "school", True),
            ("Telehealth", "telehealth", True),
            ("Old Main Street Clinic", "clinic", False),
        )
    ]
    clinics = [loc for loc in locations if loc["location_type"] == "clinic" and loc["is_active"]]

    staff: list[dict[str, Any]] = []
    for i in range(therapists):
        credential = "BCBA" if i % 5 == 0 else ("BCaBA" if i % 11 == 3 else "RBT")
        tz = "America/Chicago" if i % 12 == 7 else org_tz
        name = _name(rng)
        early = rng.random() < 0.6
        days = ["monday", "tuesday", "wednesday", "thursday", "friday"]
        if rng.random() < 0.2:
            days.append("saturday")
        hours = ("08:00", "16:00") if early else ("11:00", "19:00")
        availability = [{"weekday": d, "start": hours[0], "end": hours[1]} for d in days]
        if credential == "BCBA":
            availability = [
                w
                for d in days[:5]
                for w in (
                    {"weekday": d, "start": "08:30", "end": "12:00"},
                    {"weekday": d, "start": "12:30", "end": "17:30"},
                )
            ]
        off_day = today + timedelta(days=rng.randint(-20, 27))
        staff.append(
            {
                "id": _uuid(rng),
                "organization_id": org["id"],
                "full_name": name,
                "email": f"{name.lower().replace(' ', '.')}.{i}@demo.brightsteps.example",
                "phone": f"+1-555-01{i:02d}",
                "credential": credential,
                "specialties": rng.sample(
                    [
                        "early intervention",
                        "verbal behavior",
                        "feeding",
                        "social skills",
                        "parent training",
                        "toileting",
                    ],
                    2,
                ),
                "time_zone": tz,
                "status": "inactive" if i == therapists - 1 else "active",
                "availability": availability,
                "time_off": [
                    {
                        "start": f"{off_day.isoformat()}T00:00",
                        "end": f"{(off_day + timedelta(days=1)).isoformat()}T00:00",
                    }
                ],
            }
        )
    bcbas = [t for t in staff if t["credential"] == "BCBA"]
    direct = [t for t in staff if t["credential"] != "BCBA" and t["status"] == "active"]

    people: list[dict[str, Any]] = []
    authorizations: list[dict[str, Any]] = []
    for i in range(clients):
        name = _name(rng)
        team = [
            rng.choice(bcbas)["id"],
            *[t["id"] for t in rng.sample(direct, min(2, len(direct)))],
        ]
        born = today - timedelta(days=rng.randint(2 * 365, 14 * 365))
        people.append(
            {
                "id": _uuid(rng),
                "organization_id": org["id"],
                "full_name": name,
                "email": f"guardian.{i}@family.example",
                "phone": f"+1-555-02{i:03d}",
                "date_of_birth": born.isoformat(),
                "status": "inactive" if i % 40 == 39 else "active",
                "therapist_ids": team,
            }
        )
        status = "approved" if i % 17 else "pending"
        end = today + timedelta(days=rng.choice([20, 60, 120, 150]))
        authorizations.append(
            {
                "id": _uuid(rng),
                "client_id": people[-1]["id"],
                "number": f"AUTH-{2026}-{i:04d}",
                "payer": rng.choice(["Blue Harbor Health", "Keystone Mutual", "State Medicaid"]),
                "start_date": (today - timedelta(days=90)).isoformat(),
                "end_date": end.isoformat(),
                "status": status,
                "services": [
                    {
                        "service_code": "97153",
                        "approved_units": rng.choice([240, 480, 720]),
                        "unit_minutes": 15,
                    },
                    {"service_code": "97155", "approved_units": 96, "unit_minutes": 15},
                    {"service_code": "97156", "approved_units": 32, "unit_minutes": 15},
                ],
            }
        )

    users = [
        {
            "id": _uuid(rng),
            "organization_id": org["id"],
            "email": DemoUsers.admin,
            "full_name": "Alex Admin",
            "role": "admin",
        },
        {
            "id": _uuid(rng),
            "organization_id": org["id"],
            "email": DemoUsers.scheduler,
            "full_name": "Sam Scheduler",
            "role": "scheduler",
        },
    ] + [
        {
            "id": _uuid(rng),
            "organization_id": org["id"],
            "email": t["email"],
            "full_name": t["full_name"],
            "role": "therapist",
            "therapist_id": t["id"],
            "is_active": t["status"] == "active",
        }
        for t in staff
    ]
    sessions = _sessions(rng, staff, people, authorizations, locations, clinics, weeks, today)
    return {
        "organizations": [org],
        "locations": locations,
        "therapists": staff,
        "clients": people,
        "users": users,
        "authorizations": authorizations,
        "sessions": sessions,
    }


def _sessions(
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
