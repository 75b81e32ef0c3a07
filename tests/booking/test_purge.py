"""The purge task started by the app's lifespan, and the OpenAPI declarations of the booking routes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.booking.conftest import hold_body, hold_ok, monday, table_count
from tests.booking.test_confirm import expire
from tests.fixtures import Clinic
from therapy_scheduler.infra.db import Database


async def test_lifespan_purges_expired_holds(
    app_and_client: tuple[Any, httpx.AsyncClient], booking: Clinic, db: Database
) -> None:
    app, client = app_and_client
    held = await hold_ok(client, booking, hold_body(monday(1)))
    await expire(db, held["hold_key"])
    async with app.router.lifespan_context(app):
        for _ in range(50):
            if await table_count(db, "holds", "status = 'expired'") == 1:
                break
            await asyncio.sleep(0.1)
    assert await table_count(db, "holds", "status = 'expired'") == 1
    assert await table_count(db, "hold_occurrences", "active") == 0
    text = (await client.get("/metrics")).text
    assert "therapy_scheduler_hold_expiries_total 1.0" in text


async def test_openapi_declares_the_booking_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    hold = spec["paths"]["/sessions/hold"]["post"]
    assert {"400", "401", "403", "404", "409", "422"} <= set(hold["responses"])
    assert "THERAPIST_HOLD_CONFLICT" in hold["responses"]["409"]["description"]
    confirm = spec["paths"]["/sessions/confirm"]["post"]
    assert "HOLD_EXPIRED" in confirm["responses"]["410"]["description"]
    assert any(p["name"] == "Idempotency-Key" for p in confirm["parameters"])
    assert set(spec["paths"]["/sessions/hold/{hold_key}"]) == {"get", "delete"}
