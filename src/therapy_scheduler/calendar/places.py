"""What the travel rules need to know about places (docs/BOOKING.md "Travel time"): the coordinates of the
locations involved and the admin's matrix entries between them, read in one statement each, and the
organization's travel settings. The computation itself is `calendar/travel.py`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Float, Integer, Uuid, bindparam, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.travel import (
    Coordinates,
    Located,
    TravelRules,
    decided_by_locations,
    rules_from_settings,
)
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.models import Location, LocationTravel


def travel_applies(settings: OrganizationSettings) -> bool:
    return settings.travel_policy != "off"


async def travel_rules_for(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    settings: OrganizationSettings,
    pairs: Iterable[tuple[Located, Located]],
) -> TravelRules:
    """The travel rules that decide these pairs of places (or of sessions' places). The locations
    are read only when some pair has two different known locations, neither telehealth: only then
    can coordinates or the matrix decide (`TravelRules.minutes`); otherwise the settings alone do,
    with no statement."""
    ids = {
        i
        for a, b in pairs
        if decided_by_locations(a, b)
        for i in (a.location_id, b.location_id)
        if i is not None
    }
    if not ids:
        return _from_settings(settings, {}, {})
    return await load_travel_rules(
        conn, organization_id=organization_id, settings=settings, location_ids=ids
    )


async def load_travel_rules(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    settings: OrganizationSettings,
    location_ids: Iterable[uuid.UUID | None],
) -> TravelRules:
    """The organization's travel rules, knowing the coordinates and matrix entries of these
    locations (others count as having neither). One statement, whatever the ids: the located
    places (`to_location_id` NULL) and the matrix entries between them, as rows of one shape."""
    ids = sorted({i for i in location_ids if i is not None})
    coordinates: dict[uuid.UUID, Coordinates] = {}
    matrix: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for r in await conn.execute(_PLACES, {"organization_id": organization_id, "ids": ids}):
        if r.to_location_id is None:
            coordinates[r.location_id] = Coordinates(r.latitude, r.longitude)
        else:
            matrix[(r.location_id, r.to_location_id)] = r.minutes
    return _from_settings(settings, matrix, coordinates)


def _from_settings(
    settings: OrganizationSettings,
    matrix: dict[tuple[uuid.UUID, uuid.UUID], int],
    coordinates: dict[uuid.UUID, Coordinates],
) -> TravelRules:
    return rules_from_settings(
        speed_kmh=settings.travel_speed_kmh,
        margin_minutes=settings.travel_margin_minutes,
        type_defaults=[(*d.location_types, d.minutes) for d in settings.travel_defaults],
        matrix=matrix,
        coordinates=coordinates,
    )


_ORGANIZATION = bindparam("organization_id", type_=Uuid())
_IDS = bindparam("ids", expanding=True, type_=Uuid())
_PLACES = union_all(
    select(
        Location.id.label("location_id"),
        Location.latitude,
        Location.longitude,
        null().cast(Uuid()).label("to_location_id"),
        null().cast(Integer).label("minutes"),
    ).where(
        Location.organization_id == _ORGANIZATION,
        Location.id.in_(_IDS),
        Location.latitude.is_not(None),
    ),
    select(
        LocationTravel.from_location_id,
        null().cast(Float),
        null().cast(Float),
        LocationTravel.to_location_id,
        LocationTravel.minutes,
    ).where(
        LocationTravel.organization_id == _ORGANIZATION,
        LocationTravel.from_location_id.in_(_IDS),
        LocationTravel.to_location_id.in_(_IDS),
    ),
)
