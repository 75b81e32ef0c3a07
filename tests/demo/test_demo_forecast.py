"""The demo clinic's forecast client (docs/BOOKING.md "Forecast"): a weekly series for them outruns
their authorization, and a second session in a week goes over its weekly cap, on SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking.hold import forecast_hold
from therapy_scheduler.booking.schemas import HoldBody, SuggestBody
from therapy_scheduler.booking.suggest import suggest
from therapy_scheduler.demo.clinic import (
    DEMO_ORG_ID,
    FORECAST_AUTHORIZATION_DAYS,
    FORECAST_CLIENT_ID,
    DemoUsers,
    build_demo,
)
from therapy_scheduler.importing.service import run_import
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.models import Caseload, Organization, Therapist, User

WEEKS = 10


async def test_a_weekly_series_outruns_the_demo_authorization(db: Database) -> None:
    now = utcnow()
    today: date = now.date()
    await run_import(db, build_demo(therapists=10, clients=40, weeks=2, seed=3, today=today))
    async with db.read() as conn:
        user = (
            await conn.execute(select(User.id).where(User.email == DemoUsers.scheduler))
        ).scalar_one()
        org = (
            await conn.execute(
                select(Organization.time_zone, Organization.settings).where(
                    Organization.id == DEMO_ORG_ID
                )
            )
        ).one()
        rbt = (
            await conn.execute(
                select(Therapist.id, Therapist.time_zone)
                .join(Caseload, Caseload.therapist_id == Therapist.id)
                .where(Caseload.client_id == FORECAST_CLIENT_ID, Therapist.credential == "RBT")
            )
        ).one()
    principal = Principal(
        user_id=user,
        organization_id=DEMO_ORG_ID,
        role="scheduler",
        therapist_id=None,
        organization_time_zone=org.time_zone,
        raw_settings=org.settings or {},
    )
    first_day = today + timedelta(days=7)
    found = await suggest(
        db=db,
        principal=principal,
        body=SuggestBody(
            therapist_id=rbt.id,
            client_id=FORECAST_CLIENT_ID,
            duration_minutes=60,
            time_zone=rbt.time_zone,
            start_date=first_day,
            end_date=first_day + timedelta(days=6),
            limit=1,
        ),
        now=now,
    )
    start = found["slots"][0]["start_time"]
    body = HoldBody.model_validate(
        {
            "session": {
                "therapist_id": str(rbt.id),
                "client_id": str(FORECAST_CLIENT_ID),
                "start_time": start,
            },
            "duration_minutes": 60,
            "time_zone": rbt.time_zone,
            "recurrence": {"rrule": f"FREQ=WEEKLY;COUNT={WEEKS}"},
            "dry_run": True,
        }
    )
    forecast = await forecast_hold(db=db, principal=principal, body=body, now=now)
    end = today + timedelta(days=FORECAST_AUTHORIZATION_DAYS)
    rows = forecast["occurrences"]
    after = [
        r["number"] for r in rows if any(x["reason"] == "after_end_date" for x in r["reasons"])
    ]
    assert after, forecast["summary"]
    assert after == list(range(after[0], WEEKS + 1))
    assert forecast["summary"][0].endswith(f"fall after the authorization ends on {end}")
    assert forecast["last_covered_occurrence"]["number"] == after[0] - 1
    assert all(r["start_time"] > iso_utc(now) for r in rows)
    assert uuid.UUID(forecast["client_id"]) == FORECAST_CLIENT_ID
    assert forecast["authorizations"][0]["weekly_cap_hours"] == 2
