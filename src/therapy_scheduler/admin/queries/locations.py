"""SQL of the admin API's locations."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import ColumnElement

from therapy_scheduler.admin.queries.records import Table, name_filter
from therapy_scheduler.models import Location


class LocationRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    location_type: str
    is_active: bool
    latitude: float | None
    longitude: float | None


LOCATIONS = Table(Location, LocationRow._fields, LocationRow._make, Location.name)


def location_filters(
    *, location_type: str | None, q: str | None, include_inactive: bool
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if location_type:
        filters.append(Location.location_type == location_type)
    if q:
        filters.append(name_filter(Location.name, q))
    if not include_inactive:
        filters.append(Location.is_active.is_(True))
    return filters
