"""The webhook admin API under `/admin/webhooks` (docs/WEBHOOKS.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.webhooks import service
from therapy_scheduler.webhooks.schemas import (
    DeliveryListParams,
    EndpointCreate,
    EndpointPatch,
    RotateBody,
)
from therapy_scheduler.webhooks.service import WebhookContext

router = APIRouter(prefix="/admin", tags=["admin: webhooks"])
READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 413, 415)
Out = dict[str, Any]


async def webhook_context(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> WebhookContext:
    """The caller (401 without a valid token), the database and the SSRF setting."""
    state = request.app.state
    return WebhookContext(
        db=state.db,
        principal=principal,
        request_id=getattr(request.state, "request_id", None),
        allow_private_targets=state.settings.webhook_allow_private_targets,
    )


Ctx = Annotated[WebhookContext, Depends(webhook_context)]


@router.get("/webhooks", summary="List webhook endpoints (admin)", responses=READ)
async def list_webhooks(ctx: Ctx) -> Out:
    return await service.list_endpoints(ctx, utcnow())


@router.post(
    "/webhooks", status_code=201, summary="Register a webhook endpoint (admin)", responses=WRITE
)
async def create_webhook(ctx: Ctx, body: EndpointCreate) -> Out:
    return await service.create_endpoint(ctx, body, utcnow())


@router.get("/webhooks/{endpoint_id}", summary="One webhook endpoint (admin)", responses=READ)
async def get_webhook(ctx: Ctx, endpoint_id: uuid.UUID) -> Out:
    return await service.get_endpoint(ctx, endpoint_id, utcnow())


@router.patch("/webhooks/{endpoint_id}", summary="Change a webhook endpoint", responses=WRITE)
async def update_webhook(ctx: Ctx, endpoint_id: uuid.UUID, body: EndpointPatch) -> Out:
    return await service.update_endpoint(ctx, endpoint_id, body, utcnow())


@router.delete("/webhooks/{endpoint_id}", summary="Remove a webhook endpoint", responses=READ)
async def delete_webhook(ctx: Ctx, endpoint_id: uuid.UUID) -> Out:
    return await service.delete_endpoint(ctx, endpoint_id)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    summary="Issue a new signing secret; the old one signs too for the overlap",
    responses=WRITE,
)
async def rotate_webhook_secret(ctx: Ctx, endpoint_id: uuid.UUID, body: RotateBody) -> Out:
    return await service.rotate_secret(ctx, endpoint_id, body, utcnow())


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    summary="Latest deliveries of an endpoint, with their attempts",
    responses=READ,
)
async def list_webhook_deliveries(
    ctx: Ctx, endpoint_id: uuid.UUID, params: Annotated[DeliveryListParams, Query()]
) -> Out:
    return await service.list_deliveries(ctx, endpoint_id, params)


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again",
    responses=READ,
)
async def redeliver_webhook(ctx: Ctx, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> Out:
    return await service.redeliver(ctx, endpoint_id, delivery_id, utcnow())
