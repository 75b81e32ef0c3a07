"""Admin API routes: locations (clinics, schools, …)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import crud, locations
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.locations import LOCATIONS
from therapy_scheduler.admin.routes.common import (
    CREATE,
    READ,
    WRITE,
    Ctx,
    Out,
    one,
)
from therapy_scheduler.admin.schemas import (
    LocationCreate,
    LocationListParams,
    LocationPatch,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey

router = APIRouter(prefix="/admin", tags=["admin: locations"])


@router.get("/locations", summary="List locations (admin, scheduler)", responses=READ)
async def list_locations(ctx: Ctx, params: Annotated[LocationListParams, Query()]) -> Out:
    return await locations.list_locations(ctx=ctx, params=params)


@router.post("/locations", status_code=201, summary="Create a location", responses=CREATE)
async def create_location(
    ctx: Ctx, body: LocationCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return one(await locations.create_location(ctx=ctx, body=body))

    return await idempotent(
        ctx, endpoint="POST /admin/locations", key=idempotency_key, payload=body, run=run
    )


@router.get("/locations/{location_id}", summary="One location", responses=READ)
async def get_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return one(await crud.get_record(ctx, LOCATIONS, location_id))


@router.patch("/locations/{location_id}", summary="Change a location", responses=WRITE)
async def update_location(ctx: Ctx, location_id: uuid.UUID, body: LocationPatch) -> Out:
    return one(await locations.update_location(ctx=ctx, location_id=location_id, patch=body))


@router.post("/locations/{location_id}/archive", summary="Deactivate a location", responses=WRITE)
async def archive_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return await locations.set_location_active(ctx=ctx, location_id=location_id, active=False)


@router.post("/locations/{location_id}/restore", summary="Reactivate a location", responses=WRITE)
async def restore_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return await locations.set_location_active(ctx=ctx, location_id=location_id, active=True)
