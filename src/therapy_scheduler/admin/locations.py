"""Locations of the caller's organization (admins and schedulers). Locations are deactivated, never
deleted: sessions keep referring to them."""

from __future__ import annotations

import uuid
from typing import Any

from therapy_scheduler.admin import crud
from therapy_scheduler.admin.common import AdminContext
from therapy_scheduler.admin.crud import Resource
from therapy_scheduler.admin.queries import locations as queries
from therapy_scheduler.admin.queries.locations import LocationRow
from therapy_scheduler.admin.schemas import (
    LocationCreate,
    LocationListParams,
    LocationPatch,
)
from therapy_scheduler.auth.capabilities import Capability as C
from therapy_scheduler.kit.envelope import ok


def serialize_location(row: LocationRow, _contact: bool) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "location_type": row.location_type,
        "is_active": row.is_active,
        "latitude": row.latitude,
        "longitude": row.longitude,
    }


LOCATIONS = Resource(
    "location", queries.LOCATIONS, C.MANAGE_CLIENTS, C.MANAGE_CLIENTS,
    serialize_location, "is_active",
)  # fmt: skip


# --- locations ----------------------------------------------------------------------------------


async def create_location(*, ctx: AdminContext, body: LocationCreate) -> dict[str, Any]:
    return await crud.create_record(ctx, LOCATIONS, body.model_dump())


async def list_locations(*, ctx: AdminContext, params: LocationListParams) -> dict[str, Any]:
    """Locations by name; inactive ones only when asked."""
    filters = queries.location_filters(
        location_type=params.location_type, q=params.q, include_inactive=params.include_inactive
    )
    return await crud.list_records(ctx, LOCATIONS, params, filters)


async def update_location(
    *, ctx: AdminContext, location_id: uuid.UUID, patch: LocationPatch
) -> dict[str, Any]:
    return await crud.update_record(ctx, LOCATIONS, location_id, patch.changes())


async def set_location_active(
    *, ctx: AdminContext, location_id: uuid.UUID, active: bool
) -> dict[str, Any]:
    """Archive or restore a location (inactive locations cannot be booked; sessions keep them)."""
    record, changed = await crud.set_archived(ctx, LOCATIONS, location_id, archive=not active)
    return ok(data=record, changed=changed)
