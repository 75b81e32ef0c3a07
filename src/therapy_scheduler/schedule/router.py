"""HTTP routes of the read side. Thin: parse, resolve the caller, call one service function.

The routes return the JSON response themselves (the same orjson rendering as the app's default
response class): FastAPI would otherwise walk every returned dict through a TypeAdapter first, about
a tenth of a `get-sessions-optimized` request's CPU. `ok_response` declares the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read_of
from therapy_scheduler.auth.conditional import etag_caller
from therapy_scheduler.auth.principal import (
    Principal,
    Reading,
    reading,
)
from therapy_scheduler.auth.read_route import ReadRoute
from therapy_scheduler.infra.conditional import Watch, conditional, etag_for, validate
from therapy_scheduler.kit.envelope import JSON
from therapy_scheduler.kit.openapi import conditional_ok_response, error_responses, ok_response
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

# A read's answer and what it showed, for a principal, its statement reading the ETag's version
# itself or not.
Read = Callable[[Principal, bool], Awaitable[tuple[dict[str, Any], service.Shown]]]


async def _conditional_read(
    request: Request,
    reader: Reading,
    *,
    route: str,
    query: dict[str, Any],
    watch: Watch,
    now: datetime,
    read: Read,
) -> Response:
    """A GET of the read side with an `ETag`: an `If-None-Match` is compared with the version read
    first (infra/conditional.py), for the caller this process knows: a tag issued for them only
    matches if nothing was written since, so nothing that changed them either (a 304). Otherwise
    the answer, read as the caller its statement re-checks (`Reading.as_caller`), reading the
    version itself when none was read first; the PHI read note; its `ETag`."""
    version: int | None = None
    assumed: Principal | None = None
    if conditional(request):
        assumed = await reader.assumed_principal()
        validator = await validate(
            request,
            reader.conn,
            route=route,
            query=query,
            caller=etag_caller(assumed),
            now=now,
            watch=watch,
        )
        if validator.not_modified:
            return validator.response()
        version = validator.version
    result, shown = await reader.as_caller(lambda principal: read(principal, assumed is None))
    principal = request.state.principal
    _note_read(request, principal, route, shown)
    response = JSON(result)
    if assumed is None or assumed.organization_id == principal.organization_id:
        response.headers["ETag"] = etag_for(
            request,
            route=route,
            query=query,
            caller=etag_caller(principal),
            version=version if version is not None else (shown.version or 0),
            now=now,
        )
    return response


def _note_read(request: Request, principal: Principal, route: str, shown: service.Shown) -> None:
    note_phi_read_of(
        request,
        principal,
        endpoint=route,
        session_count=shown.count,
        client_ids=shown.client_ids,
    )


async def get_schedule_data_batch(
    request: Request,
    params: Annotated[ScheduleBatchParams, Query()],
    reader: Annotated[Reading, Depends(reading, scope="function")],
) -> Response:
    now = utcnow()

    async def batch(
        principal: Principal, with_version: bool
    ) -> tuple[dict[str, Any], service.Shown]:
        return await service.schedule_batch(
            db=request.app.state.db,
            conn=reader.conn,
            principal=principal,
            params=params,
            now=now,
            with_version=with_version,
        )

    return await _conditional_read(
        request,
        reader,
        route="get-schedule-data-batch",
        query=params.model_dump(mode="json"),
        watch=Watch(hold_expiry=True),
        now=now,
        read=batch,
    )


# Served by `ReadRoute` (auth/read_route.py), as the session list is.
router.add_api_route(
    "/get-schedule-data-batch",
    get_schedule_data_batch,
    methods=["GET"],
    summary=_BATCH_SUMMARY,
    responses=error_responses(400, 401, 404, 409) | conditional_ok_response(ScheduleBatchResponse),
    route_class_override=ReadRoute,
)


@router.post(
    "/get-schedule-data-batch",
    summary=_BATCH_SUMMARY,
    responses=error_responses(400, 401, 404, 409, 413, 415) | ok_response(ScheduleBatchResponse),
)
async def post_schedule_data_batch(
    request: Request,
    params: Annotated[ScheduleBatchBody, Body()],
    reader: Annotated[Reading, Depends(reading, scope="function")],
) -> Response:
    async def batch(principal: Principal) -> tuple[dict[str, Any], service.Shown]:
        return await service.schedule_batch(
            db=request.app.state.db,
            conn=reader.conn,
            principal=principal,
            params=params,
            now=utcnow(),
        )

    result, shown = await reader.as_caller(batch)
    _note_read(request, request.state.principal, "get-schedule-data-batch", shown)
    return JSON(result)


async def get_sessions_optimized(
    request: Request,
    params: Annotated[SessionsParams, Query()],
    reader: Annotated[Reading, Depends(reading, scope="function")],
) -> Response:
    now = utcnow()

    async def page(
        principal: Principal, with_version: bool
    ) -> tuple[dict[str, Any], service.Shown]:
        return await service.sessions_page(
            conn=reader.conn,
            principal=principal,
            params=params,
            now=now,
            with_version=with_version,
        )

    return await _conditional_read(
        request,
        reader,
        route="get-sessions-optimized",
        query=params.model_dump(mode="json"),
        watch=Watch(hold_expiry=True, session_start=True),
        now=now,
        read=page,
    )


# Served by `ReadRoute` (auth/read_route.py): the same parameters and errors, without FastAPI's
# generic per-request solving.
router.add_api_route(
    "/get-sessions-optimized",
    get_sessions_optimized,
    methods=["GET"],
    summary="A page of sessions (newest first) with a summary over all matching sessions",
    responses=error_responses(400, 401, 404, 409) | conditional_ok_response(SessionsPageResponse),
    route_class_override=ReadRoute,
)
