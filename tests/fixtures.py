"""A small, fully known clinic (two organizations) loaded through the real import path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database


def _id(n: int) -> str:
    return str(uuid.UUID(int=n))


ORG_A, ORG_B = _id(0xA0), _id(0xB0)
L1, L2, L3, LB = _id(0xA101), _id(0xA102), _id(0xA103), _id(0xB101)
T1, T2, T3, T4, TB = _id(0xA201), _id(0xA202), _id(0xA203), _id(0xA204), _id(0xB201)
C1, C2, C3, C4, CB = _id(0xA301), _id(0xA302), _id(0xA303), _id(0xA304), _id(0xB301)
A1, A2, AB = _id(0xA401), _id(0xA402), _id(0xB401)
U_ADMIN, U_SCHED, U_T1, U_T2, U_OFF, U_B = (
    _id(0xA501),
    _id(0xA502),
    _id(0xA503),
    _id(0xA504),
    _id(0xA505),
    _id(0xB501),
)
S = {n: _id(0xA600 + n) for n in range(1, 10)}
SB = _id(0xB601)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def _session(
    sid: str,
    t: str,
    c: str,
    start: str,
    end: str,
    status: str = "scheduled",
    *,
    loc: str | None = L1,
    loc_type: str = "clinic",
    auth: str | None = None,
    code: str = "97153",
    notes: str | None = None,
) -> dict[str, Any]:
    return {
        "id": sid,
        "therapist_id": t,
        "client_id": c,
        "start_time": start,
        "end_time": end,
        "status": status,
        "location_id": loc,
        "location_type": loc_type,
        "service_code": code,
        "authorization_id": auth,
        "notes": notes,
    }


def clinic_document() -> dict[str, Any]:
    org_settings = {
        "buffer_minutes": 15,
        "availability_policy": "block",
        "authorization_policy": "block",
    }
    return {
        "organizations": [
            {
                "id": ORG_A,
                "name": "Alpha ABA",
                "time_zone": "America/New_York",
                "settings": org_settings,
            },
            {"id": ORG_B, "name": "Beta Behavioral", "time_zone": "America/Los_Angeles"},
        ],
        "locations": [
            {"id": L1, "organization_id": ORG_A, "name": "Main clinic", "location_type": "clinic"},
            {
                "id": L2,
                "organization_id": ORG_A,
                "name": "Telehealth",
                "location_type": "telehealth",
            },
            {
                "id": L3,
                "organization_id": ORG_A,
                "name": "Closed clinic",
                "location_type": "clinic",
                "is_active": False,
            },
            {"id": LB, "organization_id": ORG_B, "name": "Beta clinic", "location_type": "clinic"},
        ],
        "therapists": [
            {
                "id": T1,
                "organization_id": ORG_A,
                "full_name": "Tara Quinn",
                "email": "tara@alpha.example",
                "phone": "+1-555-0101",
                "credential": "BCBA",
                "time_zone": "America/New_York",
                "availability": [
                    {"weekday": d, "start": "09:00", "end": "17:00"} for d in WEEKDAYS
                ],
                "time_off": [{"start": "2027-03-10T00:00", "end": "2027-03-11T00:00"}],
            },
            {
                "id": T2,
                "organization_id": ORG_A,
                "full_name": "Theo Ramos",
                "email": "theo@alpha.example",
                "phone": "+1-555-0102",
                "credential": "RBT",
                "time_zone": "America/Chicago",
                "availability": [
                    w
                    for d in WEEKDAYS
                    for w in (
                        {"weekday": d, "start": "08:00", "end": "12:00"},
                        {"weekday": d, "start": "13:00", "end": "16:00"},
                    )
                ],
            },
            {
                "id": T3,
                "organization_id": ORG_A,
                "full_name": "Ines Inactive",
                "email": "ines@alpha.example",
                "credential": "RBT",
                "time_zone": "America/New_York",
                "status": "inactive",
            },
            {
                "id": T4,
                "organization_id": ORG_A,
                "full_name": "Arlo Archived",
                "email": "arlo@alpha.example",
                "credential": "RBT",
                "time_zone": "America/New_York",
                "archived_at": "2026-01-01T00:00:00Z",
            },
            {
                "id": TB,
                "organization_id": ORG_B,
                "full_name": "Bea Beta",
                "email": "bea@beta.example",
                "credential": "BCBA",
                "time_zone": "America/Los_Angeles",
                "availability": [
                    {"weekday": d, "start": "09:00", "end": "17:00"} for d in WEEKDAYS
                ],
            },
        ],
        "clients": [
            {
                "id": C1,
                "organization_id": ORG_A,
                "full_name": "Casey Cole",
                "email": "cole.family@example.com",
                "phone": "+1-555-0201",
                "date_of_birth": "2019-05-01",
                "therapist_ids": [T1],
            },
            {
                "id": C2,
                "organization_id": ORG_A,
                "full_name": "Drew Diaz",
                "email": "diaz.family@example.com",
                "phone": "+1-555-0202",
                "therapist_ids": [T2],
            },
            {
                "id": C3,
                "organization_id": ORG_A,
                "full_name": "Emery Evans",
                "therapist_ids": [T1, T2],
            },
            {
                "id": C4,
                "organization_id": ORG_A,
                "full_name": "Flynn Inactive",
                "status": "inactive",
                "therapist_ids": [T1],
            },
            {
                "id": CB,
                "organization_id": ORG_B,
                "full_name": "Gale Beta",
                "email": "gale@beta.example",
                "therapist_ids": [TB],
            },
        ],
        "users": [
            {
                "id": U_ADMIN,
                "organization_id": ORG_A,
                "email": "admin@alpha.example",
                "full_name": "Ada Admin",
                "role": "admin",
            },
            {
                "id": U_SCHED,
                "organization_id": ORG_A,
                "email": "sched@alpha.example",
                "full_name": "Sol Scheduler",
                "role": "scheduler",
            },
            {
                "id": U_T1,
                "organization_id": ORG_A,
                "email": "tara@alpha.example",
                "full_name": "Tara Quinn",
                "role": "therapist",
                "therapist_id": T1,
            },
            {
                "id": U_T2,
                "organization_id": ORG_A,
                "email": "theo@alpha.example",
                "full_name": "Theo Ramos",
                "role": "therapist",
                "therapist_id": T2,
            },
            {
                "id": U_OFF,
                "organization_id": ORG_A,
                "email": "former@alpha.example",
                "full_name": "Former Staff",
                "role": "scheduler",
                "is_active": False,
            },
            {
                "id": U_B,
                "organization_id": ORG_B,
                "email": "admin@beta.example",
                "full_name": "Bo Admin",
                "role": "admin",
            },
        ],
        "authorizations": [
            {
                "id": A1,
                "client_id": C1,
                "number": "A-1",
                "payer": "Blue Harbor",
                "start_date": "2027-01-01",
                "end_date": "2027-06-30",
                "status": "approved",
                "services": [
                    {"service_code": "97153", "approved_units": 40},
                    {"service_code": "97155", "approved_units": 8},
                ],
            },
            {
                "id": A2,
                "client_id": C2,
                "number": "A-2",
                "payer": "Keystone",
                "start_date": "2027-01-01",
                "end_date": "2027-03-05",
                "status": "approved",
                "services": [{"service_code": "97153", "approved_units": 20}],
            },
            {
                "id": AB,
                "client_id": CB,
                "number": "B-1",
                "payer": "Keystone",
                "start_date": "2027-01-01",
                "end_date": "2027-12-31",
                "status": "approved",
                "services": [{"service_code": "97153", "approved_units": 100}],
            },
        ],
        "sessions": [
            _session(
                S[1],
                T1,
                C1,
                "2027-03-08T14:00:00Z",
                "2027-03-08T16:00:00Z",
                auth=A1,
                notes="Worked on manding",
            ),
            _session(
                S[2],
                T1,
                C3,
                "2027-03-08T16:05:00Z",
                "2027-03-08T17:05:00Z",
                loc=L2,
                loc_type="telehealth",
            ),
            _session(
                S[3], T2, C2, "2027-03-08T14:00:00Z", "2027-03-08T15:00:00Z", "completed", auth=A2
            ),
            _session(
                S[4], T2, C2, "2027-03-09T15:00:00Z", "2027-03-09T16:00:00Z", "cancelled", auth=A2
            ),
            _session(S[5], T1, C1, "2027-03-10T15:00:00Z", "2027-03-10T16:00:00Z", auth=A1),
            _session(S[6], T2, C2, "2027-03-10T14:00:00Z", "2027-03-10T15:00:00Z", auth=A2),
            _session(S[7], T1, C1, "2027-03-15T13:00:00Z", "2027-03-15T14:00:00Z", auth=A1),
            _session(S[8], T2, C3, "2027-03-16T19:00:00Z", "2027-03-16T20:00:00Z", "no_show"),
            _session(S[9], T1, C1, "2027-03-17T23:00:00Z", "2027-03-18T00:00:00Z", auth=A1),
            {
                "id": SB,
                "therapist_id": TB,
                "client_id": CB,
                "start_time": "2027-03-08T17:00:00Z",
                "end_time": "2027-03-08T18:00:00Z",
                "status": "scheduled",
                "location_id": LB,
                "location_type": "clinic",
                "service_code": "97153",
                "authorization_id": AB,
            },
        ],
    }


@dataclass
class Clinic:
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def seed_clinic(db: Database, settings: Settings) -> Clinic:
    doc = parse_document(clinic_document())
    async with db.write() as conn:
        await import_document(conn, doc)
    users = {
        "admin": U_ADMIN,
        "scheduler": U_SCHED,
        "therapist": U_T1,
        "therapist2": U_T2,
        "inactive": U_OFF,
        "admin_b": U_B,
    }
    return Clinic(
        settings=settings,
        tokens={k: mint_token(settings, uuid.UUID(v)) for k, v in users.items()},
    )
