"""Travel time under concurrency: racing holds of one therapist at two places too close for the trip,
through two server processes, on SQLite and PostgreSQL. No database constraint knows about travel; the
therapist's booking lock makes the check and the insert one step, so exactly one hold wins each round."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from tests.booking.conftest import local, monday, set_org_settings
from tests.booking.test_race import servers  # noqa: F401 - the fixture
from tests.booking.test_travel import LX, LY, add_places
from tests.fixtures import C1, C2, T1, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold

ALLOWED = {"INSUFFICIENT_TRAVEL_TIME", "THERAPIST_HOLD_CONFLICT", "CLIENT_HOLD_CONFLICT"}


@pytest.mark.parametrize("servers", [2], indirect=True)
async def test_racing_holds_leave_the_trip_free(
    servers: list[str],  # noqa: F811 - the fixture
    booking: Clinic,
    db: Database,
) -> None:
    await add_places(db)
    await set_org_settings(db, authorization_policy="off")
    headers = booking.headers("scheduler")

    async def one(http: httpx.AsyncClient, day_offset: int, i: int) -> httpx.Response:
        # LX 13:00-14:00 for C1 or LY 14:15-15:00 for C2: 15 minutes apart, the trip takes 20.
        client, place, start, end = (
            (C1, LX, "13:00", "14:00") if i % 2 == 0 else (C2, LY, "14:15", "15:00")
        )
        day = monday(1 + day_offset)
        body = {
            "session": {
                "therapist_id": T1,
                "client_id": client,
                "location_id": place,
                "start_time": local(day, start),
                "end_time": local(day, end),
            },
            "time_zone": "America/New_York",
        }
        return await http.post(f"{servers[i % 2]}/sessions/hold", json=body)

    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        for round_ in range(4):
            responses = await asyncio.gather(*(one(http, round_, i) for i in range(6)))
            codes = [r.json().get("code", "ok") for r in responses]
            assert codes.count("ok") == 1, codes
            assert set(codes) - {"ok"} <= ALLOWED, codes
            assert "INSUFFICIENT_TRAVEL_TIME" in codes, codes
    async with db.read() as conn:
        active = (
            await conn.execute(
                select(func.count()).select_from(Hold).where(Hold.status == "active")
            )
        ).scalar_one()
    assert active == 4
