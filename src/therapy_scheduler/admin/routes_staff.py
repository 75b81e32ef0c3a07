"""HTTP routes of the admin API for authorizations, users and the organization's settings."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import Response

from therapy_scheduler.admin import authorizations, crud, imports, users
from therapy_scheduler.admin.common import AdminContext, admin_context
from therapy_scheduler.admin.idempotent import IdempotencyKey, idempotent
from therapy_scheduler.admin.schemas import (
    AuthorizationCreate,
    AuthorizationListParams,
    AuthorizationPatch,
    UserCreate,
    UserListParams,
    UserPatch,
)
from therapy_scheduler.admin.users import USERS
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.params import StrictBool

router = APIRouter(prefix="/admin", tags=["admin: staff and settings"])
Ctx = Annotated[AdminContext, Depends(admin_context)]
READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 413, 415)
USER_WRITE = error_responses(
    400,
    401,
    403,
    404,
    409,
    413,
    415,
    s409="EMAIL_TAKEN, THERAPIST_ALREADY_LINKED or SELF_LOCKOUT",
)
CREATE = error_responses(
    400, 401, 403, 404, 409, 413, 415, 422, s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)"
)
USER_CREATE = error_responses(
    400,
    401,
    403,
    404,
    409,
    413,
    415,
    422,
    s409="EMAIL_TAKEN, THERAPIST_ALREADY_LINKED, SELF_LOCKOUT or IDEMPOTENCY_IN_PROGRESS",
)
Out = dict[str, Any]


# --- authorizations -----------------------------------------------------------------------------


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
        ctx,
        endpoint="POST /admin/authorizations",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=run,
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


# --- users --------------------------------------------------------------------------------------


@router.get("/users", summary="List users (admin)", responses=READ)
async def list_users(ctx: Ctx, params: Annotated[UserListParams, Query()]) -> Out:
    return await users.list_users(ctx=ctx, params=params)


@router.post("/users", status_code=201, summary="Create a user (admin)", responses=USER_CREATE)
async def create_user(
    ctx: Ctx, body: UserCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return {"success": True, "data": await users.create_user(ctx=ctx, body=body)}

    return await idempotent(
        ctx,
        endpoint="POST /admin/users",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=run,
    )


@router.get("/users/{user_id}", summary="One user (admin)", responses=READ)
async def get_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return {"success": True, "data": await crud.get_record(ctx, USERS, user_id)}


@router.patch("/users/{user_id}", summary="Change a user (admin)", responses=USER_WRITE)
async def update_user(ctx: Ctx, user_id: uuid.UUID, body: UserPatch) -> Out:
    return {"success": True, "data": await users.update_user(ctx=ctx, user_id=user_id, patch=body)}


@router.post("/users/{user_id}/archive", summary="Deactivate a user (admin)", responses=USER_WRITE)
async def archive_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return await users.set_user_active(ctx=ctx, user_id=user_id, active=False)


@router.post("/users/{user_id}/restore", summary="Reactivate a user (admin)", responses=USER_WRITE)
async def restore_user(ctx: Ctx, user_id: uuid.UUID) -> Out:
    return await users.set_user_active(ctx=ctx, user_id=user_id, active=True)


# --- organization -------------------------------------------------------------------------------


@router.get(
    "/organization/settings",
    summary="The organization and its scheduling settings (admin)",
    responses=READ,
)
async def get_settings(ctx: Ctx) -> Out:
    return await users.get_organization(ctx=ctx)


@router.patch(
    "/organization/settings",
    summary="Change some settings; the merged settings must be valid (admin)",
    responses=WRITE,
)
async def update_settings(
    ctx: Ctx,
    changes: Annotated[
        dict[str, Any],
        Body(
            examples=[{"buffer_minutes": 10, "availability_policy": "warn"}],
            description="Any subset of the settings' top-level keys",
        ),
    ],
) -> Out:
    return await users.update_settings(ctx=ctx, changes=changes)


# --- bulk import --------------------------------------------------------------------------------


@router.post(
    "/import",
    summary="Bulk import into your organization (admin); dry_run=true only reports problems",
    responses=error_responses(
        400,
        401,
        403,
        413,
        415,
        409,
        422,
        s400="Invalid input (VALIDATION_ERROR, INVALID_JSON, IMPORT_INVALID with details.problems)",
        s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)",
    ),
)
async def import_document(
    ctx: Ctx,
    document: Annotated[
        dict[str, Any],
        Body(description="The import document of SPEC §8 without `organizations`"),
    ],
    dry_run: Annotated[StrictBool, Query()] = False,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def run() -> Out:
        return await imports.import_for_organization(ctx=ctx, document=document, dry_run=dry_run)

    return await idempotent(
        ctx,
        endpoint="POST /admin/import",
        key=idempotency_key,
        payload={"dry_run": dry_run, "document": document},
        run=run,
        status=200,
    )
