"""Booking fixtures: the known clinic of tests/fixtures.py, re-dated so that its authorizations and one
day of T1's time off lie in the near future (holds must be in the future relative to real now).

Test times are built from `monday(n)`: the Monday n weeks after the next Monday, in New York (the
organization's and T1's zone). T1 works Mon-Fri 09:00-17:00 there; org A's buffer is 15 minutes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.fixtures import A1, A2, C1, T1, Clinic, clinic_document, seed_clinic
from therapy_scheduler.config import Settings
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database

NY = ZoneInfo("America/New_York")
UNITS_97153 = 100  # A1; the fixture's own sessions already spend 20 of them
UNITS_97155 = 8  # A1: two hours


def today_ny() -> date:
    return datetime.now(NY).date()


def monday(weeks: int = 0) -> date:
    """The Monday `weeks` weeks after the next Monday (never today)."""
    today = today_ny()
    ahead = (7 - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead + 7 * weeks)


def time_off_day() -> date:
    """A Wednesday T1 has off (whole day)."""
    return monday(3) + timedelta(days=2)


def local(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00"


def named(day: date, hhmm: str, zone: str = "America/New_York") -> str:
    """How an error message names an occurrence: its local start in the request's zone."""
    return f"{day:%a} {day.day} {day:%b} {day.year} at {hhmm} ({zone})"


def hold_body(
    day: date,
    start: str = "13:00",
    end: str | None = "14:00",
    *,
    therapist: str = T1,
    client: str = C1,
    **extra: Any,
) -> dict[str, Any]:
    session: dict[str, Any] = {
        "therapist_id": therapist,
        "client_id": client,
        "start_time": local(day, start),
    }
    if end is not None:
        session["end_time"] = local(day, end)
    session.update(extra.pop("session", {}))
    return {"session": session, "time_zone": "America/New_York", **extra}


def redated_document() -> dict[str, Any]:
    doc = clinic_document()
    start = (today_ny() - timedelta(days=30)).isoformat()
    end = (today_ny() + timedelta(days=400)).isoformat()
    auths = {a["id"]: a for a in doc["authorizations"]}
    a1 = {**auths[A1], "start_date": start, "end_date": end}
    a1["services"] = [
        {"service_code": "97153", "approved_units": UNITS_97153},
        {"service_code": "97155", "approved_units": UNITS_97155},
    ]
    a2 = {**auths[A2], "start_date": start, "end_date": end}
    t1 = next(t for t in doc["therapists"] if t["id"] == T1)
    off = time_off_day()
    t1 = {
        **t1,
        "time_off": [
            {
                "start": f"{off.isoformat()}T00:00",
                "end": f"{(off + timedelta(days=1)).isoformat()}T00:00",
            }
        ],
    }
    return {"therapists": [t1], "authorizations": [a1, a2]}


@pytest.fixture
async def booking(db: Database, settings: Settings) -> Clinic:
    clinic = await seed_clinic(db, settings)
    async with db.write() as conn:
        await import_document(conn, parse_document(redated_document()))
    return clinic


async def hold(
    client: httpx.AsyncClient, clinic: Clinic, body: dict[str, Any], who: str = "scheduler"
) -> httpx.Response:
    return await client.post("/sessions/hold", json=body, headers=clinic.headers(who))


async def hold_ok(
    client: httpx.AsyncClient, clinic: Clinic, body: dict[str, Any], who: str = "scheduler"
) -> dict[str, Any]:
    r = await hold(client, clinic, body, who)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def confirm_ok(
    client: httpx.AsyncClient,
    clinic: Clinic,
    held: dict[str, Any],
    who: str = "scheduler",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "hold_key": held["hold_key"],
        "session": {
            "start_time": held["occurrences"][0]["start_time"],
            "end_time": held["occurrences"][0]["end_time"],
        },
        **extra,
    }
    r = await client.post("/sessions/confirm", json=body, headers=clinic.headers(who))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def book(
    client: httpx.AsyncClient, clinic: Clinic, body: dict[str, Any], who: str = "scheduler"
) -> dict[str, Any]:
    """Hold then confirm; returns the confirm response."""
    return await confirm_ok(client, clinic, await hold_ok(client, clinic, body, who), who)


def utc(day: date, hhmm: str, tz: ZoneInfo = NY) -> str:
    """The UTC instant (`...Z`) of a local wall-clock time."""
    naive = datetime.fromisoformat(local(day, hhmm))
    instant = naive.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


async def set_org_settings(db: Database, **changes: Any) -> None:
    """Change organization A's settings (policies are read fresh on every request)."""
    import uuid

    from sqlalchemy import select, update

    from tests.fixtures import ORG_A
    from therapy_scheduler.models import Organization

    async with db.write() as conn:
        current = (
            await conn.execute(
                select(Organization.settings).where(Organization.id == uuid.UUID(ORG_A))
            )
        ).scalar_one()
        await conn.execute(
            update(Organization)
            .where(Organization.id == uuid.UUID(ORG_A))
            .values(settings={**current, **changes})
        )


async def table_count(db: Database, table: str, where: str = "") -> int:
    from sqlalchemy import text

    sql = f"SELECT count(*) FROM {table}"  # noqa: S608 - test helper, literal names only
    if where:
        sql += f" WHERE {where}"
    async with db.read() as conn:
        return int((await conn.execute(text(sql))).scalar_one())
