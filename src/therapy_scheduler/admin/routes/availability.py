"""Admin API routes: a therapist's weekly availability and time off."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import calendar
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.routes.common import (
    READ,
    WRITE,
    Ctx,
    Out,
)
from therapy_scheduler.admin.schemas import (
    AvailabilityPut,
    TimeOffCreate,
    TimeOffListParams,
    TimeOffPatch,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey
from therapy_scheduler.kit.openapi import error_responses

router = APIRouter(prefix="/admin", tags=["admin: availability"])


@router.get(
    "/therapists/{therapist_id}/availability",
    summary="Weekly availability windows (local to the therapist's zone)",
    responses=READ,
)
async def get_availability(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await calendar.get_availability(ctx=ctx, therapist_id=therapist_id)


@router.put(
    "/therapists/{therapist_id}/availability",
    summary="Replace every weekly availability window",
    responses=WRITE,
)
async def put_availability(ctx: Ctx, therapist_id: uuid.UUID, body: AvailabilityPut) -> Out:
    return await calendar.put_availability(ctx=ctx, therapist_id=therapist_id, body=body)


@router.get(
    "/therapists/{therapist_id}/time-off",
    summary="Dated exceptions: time off and extra hours",
    responses=READ,
)
async def list_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, params: Annotated[TimeOffListParams, Query()]
) -> Out:
    return await calendar.list_time_off(ctx=ctx, therapist_id=therapist_id, params=params)


@router.post(
    "/therapists/{therapist_id}/time-off",
    status_code=201,
    summary="Add time off or extra hours (local times)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        413,
        415,
        409,
        422,
        s400="Invalid input (VALIDATION_ERROR, NONEXISTENT_LOCAL_TIME)",
        s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)",
    ),
)
async def create_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, body: TimeOffCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return await calendar.create_time_off(ctx=ctx, therapist_id=therapist_id, body=body)

    return await idempotent(
        ctx,
        endpoint="POST /admin/therapists/{id}/time-off",
        key=idempotency_key,
        payload={
            "therapist_id": str(therapist_id),
            **body.model_dump(mode="json", exclude_unset=True),
        },
        run=run,
    )


@router.patch(
    "/therapists/{therapist_id}/time-off/{entry_id}",
    summary="Change a time-off entry",
    responses=WRITE,
)
async def update_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, entry_id: uuid.UUID, body: TimeOffPatch
) -> Out:
    return await calendar.update_time_off(
        ctx=ctx, therapist_id=therapist_id, entry_id=entry_id, patch=body
    )


@router.delete(
    "/therapists/{therapist_id}/time-off/{entry_id}",
    summary="Remove a time-off entry",
    responses=READ,
)
async def delete_time_off(ctx: Ctx, therapist_id: uuid.UUID, entry_id: uuid.UUID) -> Out:
    return await calendar.delete_time_off(ctx=ctx, therapist_id=therapist_id, entry_id=entry_id)
