"""Admin API routes: bulk import into the caller's organization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from therapy_scheduler.admin import imports
from therapy_scheduler.admin.idempotent import idempotent
from therapy_scheduler.admin.routes.common import (
    Ctx,
    Out,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.params import StrictBool

router = APIRouter(prefix="/admin", tags=["admin: imports"])


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
        Body(description="The import document of docs/IMPORT.md without `organizations`"),
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
