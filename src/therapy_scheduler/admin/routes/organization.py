"""Admin API routes: the organization and its settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from therapy_scheduler.admin import users
from therapy_scheduler.admin.routes.common import (
    READ,
    WRITE,
    Ctx,
    Out,
)

router = APIRouter(prefix="/admin", tags=["admin: organization"])


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
