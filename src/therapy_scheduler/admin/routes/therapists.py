"""Admin API routes: therapists: list, create, read, change, archive and restore."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import crud, people
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.people import THERAPISTS
from therapy_scheduler.admin.routes.common import (
    CREATE,
    READ,
    WRITE,
    Ctx,
    Out,
    one,
)
from therapy_scheduler.admin.schemas import (
    TherapistCreate,
    TherapistListParams,
    TherapistPatch,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey

router = APIRouter(prefix="/admin", tags=["admin: therapists"])


@router.get("/therapists", summary="List therapists (admin, scheduler)", responses=READ)
async def list_therapists(ctx: Ctx, params: Annotated[TherapistListParams, Query()]) -> Out:
    return await people.list_therapists(ctx=ctx, params=params)


@router.post("/therapists", status_code=201, summary="Create a therapist (admin)", responses=CREATE)
async def create_therapist(
    ctx: Ctx, body: TherapistCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return one(await people.create_therapist(ctx=ctx, body=body))

    return await idempotent(
        ctx, endpoint="POST /admin/therapists", key=idempotency_key, payload=body, run=run
    )


@router.get("/therapists/{therapist_id}", summary="One therapist", responses=READ)
async def get_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return one(await crud.get_record(ctx, THERAPISTS, therapist_id))


@router.patch("/therapists/{therapist_id}", summary="Change a therapist (admin)", responses=WRITE)
async def update_therapist(ctx: Ctx, therapist_id: uuid.UUID, body: TherapistPatch) -> Out:
    return one(await people.update_therapist(ctx=ctx, therapist_id=therapist_id, patch=body))


@router.post(
    "/therapists/{therapist_id}/archive", summary="Archive a therapist (admin)", responses=WRITE
)
async def archive_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await people.archive_person(
        ctx=ctx, kind="therapist", person_id=therapist_id, archive=True
    )


@router.post(
    "/therapists/{therapist_id}/restore", summary="Restore an archived therapist", responses=WRITE
)
async def restore_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await people.archive_person(
        ctx=ctx, kind="therapist", person_id=therapist_id, archive=False
    )
