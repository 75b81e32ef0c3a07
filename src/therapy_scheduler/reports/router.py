"""HTTP route of the reports (docs/API.md "Supervision report")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read_of
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.reports import service
from therapy_scheduler.reports.schemas import SupervisionReportParams

router = APIRouter(tags=["reports"])


@router.get(
    "/reports/supervision",
    summary="Monthly BACB supervision figures per RBT (admin, scheduler; a therapist: their own "
    "row); Accept: text/csv gives CSV",
    responses={
        **error_responses(400, 401, 403, 404),
        200: {"content": {"application/json": {}, "text/csv": {}}},
    },
)
async def supervision_report(
    request: Request,
    params: Annotated[SupervisionReportParams, Query()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> Any:
    report = await service.supervision_report(
        db=request.app.state.db, principal=principal, params=params
    )
    note_phi_read_of(
        request,
        principal,
        endpoint="GET /reports/supervision",
        session_count=report.session_count,
        client_ids=report.client_ids,
        entity_type="report",
        entity_id="supervision",
    )
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            service.as_csv(report.body),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="supervision-{params.month}.csv"',
                "Cache-Control": "no-store",
            },
        )
    body: dict[str, Any] = report.body
    return body
