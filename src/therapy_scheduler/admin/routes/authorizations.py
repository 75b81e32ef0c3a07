"""Admin API routes: insurance authorizations and their units per service code."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import authorizations
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.routes.common import (
    CREATE,
    READ,
    WRITE,
    Ctx,
    Out,
)
from therapy_scheduler.admin.schemas import (
    AuthorizationCreate,
    AuthorizationListParams,
    AuthorizationPatch,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey

router = APIRouter(prefix="/admin", tags=["admin: authorizations"])


@router.get(
    "/authorizations",
    summary="List authorizations with unit balances (admin, scheduler)",
    responses=READ,
)
async def list_authorizations(ctx: Ctx, params: Annotated[AuthorizationListParams, Query()]) -> Out:
    return await authorizations.list_authorizations(ctx=ctx, params=params)


@router.post(
    "/authorizations", status_code=201, summary="Create an authorization (admin)", responses=CREATE
)
async def create_authorization(
    ctx: Ctx, body: AuthorizationCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return await authorizations.create_authorization(ctx=ctx, body=body)

    return await idempotent(
        ctx, endpoint="POST /admin/authorizations", key=idempotency_key, payload=body, run=run
    )


@router.get("/authorizations/{authorization_id}", summary="One authorization", responses=READ)
async def get_authorization(ctx: Ctx, authorization_id: uuid.UUID) -> Out:
    return await authorizations.get_authorization(ctx=ctx, authorization_id=authorization_id)


@router.patch(
    "/authorizations/{authorization_id}",
    summary="Change an authorization; `services` replaces the list (admin)",
    responses=WRITE,
)
async def update_authorization(
    ctx: Ctx, authorization_id: uuid.UUID, body: AuthorizationPatch
) -> Out:
    return await authorizations.update_authorization(
        ctx=ctx, authorization_id=authorization_id, patch=body
    )
