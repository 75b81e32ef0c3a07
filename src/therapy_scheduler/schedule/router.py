"""HTTP routes of the read side. Thin: parse, resolve the caller, call one service function.

The routes return the JSON response themselves (the same orjson rendering as the app's default
response class): FastAPI would otherwise walk every returned dict through a TypeAdapter first, about
a tenth of a `get-sessions-optimized` request's CPU. `ok_response` declares the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read_of
from therapy_scheduler.auth.principal import Principal, Reading, current_principal, reading
from therapy_scheduler.kit.envelope import JSON
from therapy_scheduler.kit.openapi import error_responses, ok_response
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.schedule import service
from therapy_scheduler.schedule.responses import ScheduleBatchResponse, SessionsPageResponse
from therapy_scheduler.schedule.schemas import (
    ScheduleBatchBody,
    ScheduleBatchParams,
    SessionsParams,
)

router = APIRouter(tags=["schedule"])

_BATCH_SUMMARY = "Sessions, availability and conflicts of a date range, in batches"


@router.get(
    "/get-schedule-data-batch",
    summary=_BATCH_SUMMARY,
    responses=error_responses(400, 401, 404) | ok_response(ScheduleBatchResponse),
)
async def get_schedule_data_batch(
    request: Request,
    params: Annotated[ScheduleBatchParams, Query()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> Response:
    result, shown = await service.schedule_batch(
        db=request.app.state.db, principal=principal, params=params, now=utcnow()
    )
    _note_batch_read(request, principal, shown)
    return JSON(result)


@router.post(
    "/get-schedule-data-batch",
    summary=_BATCH_SUMMARY,
    responses=error_responses(400, 401, 404, 413, 415) | ok_response(ScheduleBatchResponse),
)
async def post_schedule_data_batch(
    request: Request,
    params: Annotated[ScheduleBatchBody, Body()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> Response:
    result, shown = await service.schedule_batch(
        db=request.app.state.db, principal=principal, params=params, now=utcnow()
    )
    _note_batch_read(request, principal, shown)
    return JSON(result)


@router.get(
    "/get-sessions-optimized",
    summary="A page of sessions (newest first) with a summary over all matching sessions",
    responses=error_responses(400, 401, 404, 409) | ok_response(SessionsPageResponse),
)
async def get_sessions_optimized(
    request: Request,
    params: Annotated[SessionsParams, Query()],
    reader: Annotated[Reading, Depends(reading, scope="function")],
) -> Response:
    now = utcnow()

    async def page(principal: Principal) -> tuple[dict[str, Any], service.Shown]:
        return await service.sessions_page(
            conn=reader.conn, principal=principal, params=params, now=now
        )

    result, shown = await reader.as_caller(page)
    note_phi_read_of(
        request,
        request.state.principal,
        endpoint="get-sessions-optimized",
        session_count=shown.count,
        client_ids=shown.client_ids,
    )
    return JSON(result)


def _note_batch_read(request: Request, principal: Principal, shown: service.Shown) -> None:
    note_phi_read_of(
        request,
        principal,
        endpoint="get-schedule-data-batch",
        session_count=shown.count,
        client_ids=shown.client_ids,
    )
