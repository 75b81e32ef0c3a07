"""A realistic demo clinic, built as an import document so that it goes through the same import path
as a clinic's own data. Deterministic for a given seed and day."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from therapy_scheduler.demo.names import FIRST, LAST
from therapy_scheduler.demo.sessions import demo_sessions

DEMO_ORG_ID = uuid.UUID("5e1f6f3c-7a0b-4c8e-9d2a-000000000001")
# The client whose weekly series outruns the authorization (docs/BOOKING.md "Forecast").
FORECAST_CLIENT_ID = uuid.UUID("5e1f6f3c-7a0b-4c8e-9d2a-0000000000f1")
FORECAST_CLIENT_NAME = "Riley Okafor"
FORECAST_AUTHORIZATION_DAYS = 42


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
            # Travel between places (docs/BOOKING.md "Travel time"): the clinics and the school have
            # coordinates in and around Albany, NY; a client's home has none, so the type defaults
            # apply to it.
            "travel_policy": "block",
            "travel_speed_kmh": 30,
            "travel_margin_minutes": 5,
            "travel_defaults": [
                {"location_types": ["clinic", "home"], "minutes": 20},
                {"location_types": ["home", "school"], "minutes": 20},
                {"location_types": ["home", "home"], "minutes": 20},
            ],
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
            **({"latitude": at[0], "longitude": at[1]} if at else {}),
        }
        for name, kind, active, at in (
            ("Bright Steps Riverside Clinic", "clinic", True, (42.6526, -73.7562)),
            ("Bright Steps Oak Park Clinic", "clinic", True, (42.6880, -73.8370)),
            ("Bright Steps Harbor Clinic", "clinic", True, (42.6420, -73.7429)),
            ("Maplewood Elementary", "school", True, (42.7420, -73.7190)),
            ("Telehealth", "telehealth", True, None),
            ("Old Main Street Clinic", "clinic", False, (42.6510, -73.7550)),
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
    sessions = demo_sessions(rng, staff, people, authorizations, locations, clinics, weeks, today)
    forecast_client, forecast_authorization = _forecast_client(str(DEMO_ORG_ID), staff, today)
    people.append(forecast_client)
    authorizations.append(forecast_authorization)
    return {
        "organizations": [org],
        "locations": locations,
        "therapists": staff,
        "clients": people,
        "users": users,
        "authorizations": authorizations,
        "sessions": sessions,
    }


def _forecast_client(
    organization_id: str, staff: list[dict[str, Any]], today: date
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A client without sessions whose authorization ends six weeks after `today` and caps 97153 at
    two hours a week: a "Repeat weekly" of more than six weeks on the board shows the forecast's
    later sessions after the authorization's end, a second session in a week the cap. Added after
    the random clinic is drawn (no draw of its own), so the rest of the demo stays the same."""
    active = [t for t in staff if t["status"] == "active"]
    # An RBT and the first active therapist (a small demo may have no RBT, or only one therapist).
    rbt = next((t for t in active if t["credential"] == "RBT"), active[0])
    team = [rbt] if rbt is active[0] else [rbt, active[0]]
    client = {
        "id": str(FORECAST_CLIENT_ID),
        "organization_id": organization_id,
        "full_name": FORECAST_CLIENT_NAME,
        "email": "guardian.forecast@family.example",
        "phone": "+1-555-0299",
        "date_of_birth": (today - timedelta(days=6 * 365)).isoformat(),
        "status": "active",
        "therapist_ids": [t["id"] for t in team],
    }
    authorization = {
        "id": str(uuid.uuid5(FORECAST_CLIENT_ID, "authorization")),
        "client_id": client["id"],
        "number": "AUTH-2026-F001",
        "payer": "Keystone Mutual",
        "start_date": (today - timedelta(days=30)).isoformat(),
        "end_date": (today + timedelta(days=FORECAST_AUTHORIZATION_DAYS)).isoformat(),
        "status": "approved",
        "services": [
            {
                "service_code": "97153",
                "approved_units": 240,
                "unit_minutes": 15,
                "weekly_cap_hours": 2,
            },
            {"service_code": "97155", "approved_units": 48, "unit_minutes": 15},
        ],
    }
    return client, authorization
