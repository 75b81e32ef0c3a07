"""Up to three free slots near a refused occurrence, for the same therapist and client (docs/BOOKING.md).

A thin use of the shared engine (`slots.py`, which also serves `POST /suggest-alternative-times`):
candidates within two weeks of the requested day, in the future, closest to the requested start
first, no two overlapping. They respect both calendars, working hours and time off, the break and the
travel time, the supervision overlaps the organization allows and, under authorization policy
`block`, the client's remaining authorization units and weekly caps. An occurrence refused as a
supervision (`SUPERVISION_NOT_CONTAINED` for a supervising code, `SUPERVISOR_CREDENTIAL_REQUIRED`)
gets supervising slots only: what the scheduler was trying to book.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking.errors import SupervisionNotContained, SupervisorCredentialRequired
from therapy_scheduler.booking.slot_choice import closest
from therapy_scheduler.booking.slots import SlotRequest, free_slots, load_world
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
    refused_code: str | None = None,
) -> list[dict[str, str]]:
    """Free `[start, end)` ranges of `duration`, closest to `around` first (returned in time order);
    `refused_code` is the code of the refusal they are alternatives to."""
    settings = principal.settings
    supervised_codes = settings.supervised_codes(service_code)
    supervising_only = refused_code == SupervisorCredentialRequired.code or (
        refused_code == SupervisionNotContained.code and bool(supervised_codes)
    )
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
        supervised_codes=supervised_codes,
        supervising_only=supervising_only,
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
