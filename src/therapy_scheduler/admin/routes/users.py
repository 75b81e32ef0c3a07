"""Admin API routes: users (logins) and their roles."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from therapy_scheduler.admin import crud, users
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.routes.common import (
    READ,
    USER_CREATE,
    USER_WRITE,
    Ctx,
    Out,
    one,
)
from therapy_scheduler.admin.schemas import (
    UserCreate,
    UserListParams,
    UserPatch,
)
from therapy_scheduler.admin.users import USERS
from therapy_scheduler.infra.idempotency import IdempotencyKey

router = APIRouter(prefix="/admin", tags=["admin: users"])


@router.get("/users", summary="List users (admin)", responses=READ)
async def list_users(ctx: Ctx, params: Annotated[UserListParams, Query()]) -> Out:
    return await users.list_users(ctx=ctx, params=params)


@router.post("/users", status_code=201, summary="Create a user (admin)", responses=USER_CREATE)
async def create_user(
    ctx: Ctx, body: UserCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return one(await users.create_user(ctx=ctx, body=body))

    return await idempotent(
        ctx, endpoint="POST /admin/users", key=idempotency_key, payload=body, run=run
    )


@router.get("/users/{user_id}", summary="One user (admin)", responses=READ)
async def get_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return one(await crud.get_record(ctx, USERS, user_id))


@router.patch("/users/{user_id}", summary="Change a user (admin)", responses=USER_WRITE)
async def update_user(ctx: Ctx, user_id: uuid.UUID, body: UserPatch) -> Out:
    return one(await users.update_user(ctx=ctx, user_id=user_id, patch=body))


@router.post("/users/{user_id}/archive", summary="Deactivate a user (admin)", responses=USER_WRITE)
async def archive_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return await users.set_user_active(ctx=ctx, user_id=user_id, active=False)


@router.post("/users/{user_id}/restore", summary="Reactivate a user (admin)", responses=USER_WRITE)
async def restore_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return await users.set_user_active(ctx=ctx, user_id=user_id, active=True)
