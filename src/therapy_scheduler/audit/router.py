"""HTTP route of the audit log (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from therapy_scheduler.audit import service
from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.kit.openapi import error_responses

router = APIRouter(tags=["audit"])


@router.get(
    "/admin/audit-events",
    summary="Audit events of the organization (writes and reads of PHI), newest first",
    responses=error_responses(400, 401, 403),
)
async def list_audit_events(
    request: Request,
    params: Annotated[AuditEventsParams, Query()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    return await service.audit_events(
        db=request.app.state.db,
        writer=request.app.state.audit_writer,
        principal=principal,
        params=params,
    )
