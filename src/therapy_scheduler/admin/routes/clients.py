"""Admin API routes: clients and their caseloads."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import crud, people
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.people import CLIENTS
from therapy_scheduler.admin.routes.common import (
    CREATE,
    READ,
    WRITE,
    Ctx,
    Out,
    one,
)
from therapy_scheduler.admin.schemas import (
    CaseloadPut,
    ClientCreate,
    ClientListParams,
    ClientPatch,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey

router = APIRouter(prefix="/admin", tags=["admin: clients"])


@router.get("/clients", summary="List clients (admin, scheduler)", responses=READ)
async def list_clients(ctx: Ctx, params: Annotated[ClientListParams, Query()]) -> Out:
    return await people.list_clients(ctx=ctx, params=params)


@router.post("/clients", status_code=201, summary="Create a client", responses=CREATE)
async def create_client(
    ctx: Ctx, body: ClientCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return one(await people.create_client(ctx=ctx, body=body))

    return await idempotent(
        ctx, endpoint="POST /admin/clients", key=idempotency_key, payload=body, run=run
    )


@router.get("/clients/{client_id}", summary="One client", responses=READ)
async def get_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return one(await crud.get_record(ctx, CLIENTS, client_id))


@router.patch("/clients/{client_id}", summary="Change a client", responses=WRITE)
async def update_client(ctx: Ctx, client_id: uuid.UUID, body: ClientPatch) -> Out:
    return one(await people.update_client(ctx=ctx, client_id=client_id, patch=body))


@router.post("/clients/{client_id}/archive", summary="Archive a client", responses=WRITE)
async def archive_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.archive_person(ctx=ctx, kind="client", person_id=client_id, archive=True)


@router.post("/clients/{client_id}/restore", summary="Restore an archived client", responses=WRITE)
async def restore_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.archive_person(ctx=ctx, kind="client", person_id=client_id, archive=False)


@router.get("/clients/{client_id}/caseload", summary="The client's therapists", responses=READ)
async def get_caseload(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.get_caseload(ctx=ctx, client_id=client_id)


@router.put(
    "/clients/{client_id}/caseload", summary="Replace the client's therapists", responses=WRITE
)
async def put_caseload(ctx: Ctx, client_id: uuid.UUID, body: CaseloadPut) -> Out:
    return await people.put_caseload(ctx=ctx, client_id=client_id, body=body)
