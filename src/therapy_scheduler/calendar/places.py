"""What the travel rules need to know about places (docs/BOOKING.md "Travel time"): the coordinates of the
locations involved and the admin's matrix entries between them, read in one statement each, and the
organization's travel settings. The computation itself is `calendar/travel.py`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.travel import Coordinates, TravelRules, rules_from_settings
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.models import Location, LocationTravel


def travel_applies(settings: OrganizationSettings) -> bool:
    return settings.travel_policy != "off"


async def load_travel_rules(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    settings: OrganizationSettings,
    location_ids: Iterable[uuid.UUID | None],
) -> TravelRules:
    """The organization's travel rules, knowing the coordinates and matrix entries of these
    locations (others count as having neither). Always two statements, whatever the ids."""
    ids = sorted({i for i in location_ids if i is not None})
    rows = await conn.execute(
        select(Location.id, Location.latitude, Location.longitude).where(
            Location.organization_id == organization_id,
            Location.id.in_(ids),
            Location.latitude.is_not(None),
        )
    )
    coordinates = {r.id: Coordinates(r.latitude, r.longitude) for r in rows}
    entries = await conn.execute(
        select(
            LocationTravel.from_location_id,
            LocationTravel.to_location_id,
            LocationTravel.minutes,
        ).where(
            LocationTravel.organization_id == organization_id,
            LocationTravel.from_location_id.in_(ids),
            LocationTravel.to_location_id.in_(ids),
        )
    )
    matrix = {(r.from_location_id, r.to_location_id): r.minutes for r in entries}
    return rules_from_settings(
        speed_kmh=settings.travel_speed_kmh,
        margin_minutes=settings.travel_margin_minutes,
        type_defaults=[(*d.location_types, d.minutes) for d in settings.travel_defaults],
        matrix=matrix,
        coordinates=coordinates,
    )
