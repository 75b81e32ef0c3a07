"""Up to three free slots near a refused occurrence, for the same therapist and client (docs/BOOKING.md).

A thin use of the shared engine (`slots.py`, which also serves `POST /suggest-alternative-times`):
candidates within two weeks of the requested day, in the future, closest to the requested start
first, no two overlapping. They respect both calendars, working hours and time off, the travel buffer
and, under authorization policy `block`, the client's remaining authorization units.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking.slots import SlotRequest, closest, free_slots, load_world
from therapy_scheduler.calendar.places import travel_applies
from therapy_scheduler.kit.time import iso_utc

SEARCH_DAYS = 14


async def find_alternatives(
    conn: AsyncConnection,
    *,
    principal: Principal,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    around: datetime,
    duration: timedelta,
    now: datetime,
    service_code: str,
    location_id: uuid.UUID | None,
    location_type: str | None,
    exclude_session_id: uuid.UUID | None = None,
    limit: int = 3,
) -> list[dict[str, str]]:
    """Free `[start, end)` ranges of `duration`, closest to `around` first (returned in time order)."""
    settings = principal.settings
    req = SlotRequest(
        organization_id=principal.organization_id,
        therapist_id=therapist_id,
        client_id=client_id,
        duration=duration,
        service_code=service_code,
        location_id=location_id,
        location_type=location_type,
        buffer_minutes=settings.buffer_minutes,
        organization_zone=principal.zone,
        check_units=settings.authorization_policy == "block",
        exclude_session_id=exclude_session_id,
        travel=settings if travel_applies(settings) else None,
    )
    lower = max(around - timedelta(days=1), now)
    upper = around + timedelta(days=SEARCH_DAYS + 1)
    world = await load_world(conn, req, lower, upper, now)
    if world.calendar is None:
        return []
    slots = free_slots(
        world, req, lower=lower, upper=upper, now=now, align_zone=world.calendar.zone
    )
    return [
        {"start_time": iso_utc(s.start), "end_time": iso_utc(s.end)}
        for s in closest(slots, around, limit)
    ]
