"""Admin API routes: the travel-time matrix between locations."""

from __future__ import annotations

from fastapi import APIRouter

from therapy_scheduler.admin import travel
from therapy_scheduler.admin.routes.common import READ, WRITE, Ctx, Out
from therapy_scheduler.admin.schemas import TravelTimesPut

router = APIRouter(prefix="/admin", tags=["admin: locations"])


@router.get(
    "/travel-times",
    summary="The travel minutes set between pairs of locations (admin, scheduler)",
    responses=READ,
)
async def get_travel_times(ctx: Ctx) -> Out:
    return await travel.get_travel_times(ctx=ctx)


@router.put(
    "/travel-times",
    summary="Replace the travel minutes set between pairs of locations (admin, scheduler)",
    responses=WRITE,
)
async def put_travel_times(ctx: Ctx, body: TravelTimesPut) -> Out:
    return await travel.put_travel_times(ctx=ctx, body=body)
