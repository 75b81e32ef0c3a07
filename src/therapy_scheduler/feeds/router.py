"""HTTP routes of the calendar feeds. The feed URL itself needs no bearer token: its secret is the
token in the path, which is why access logs and metrics record only the route template."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.feeds import service
from therapy_scheduler.feeds.schemas import CreateFeedBody, ListFeedsParams
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["calendar feeds"])


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


@router.post(
    "/calendar/feeds",
    status_code=201,
    summary="Create a calendar feed for a therapist; the URL is shown only in this response",
    responses=error_responses(400, 401, 404, 413, 415),
)
async def create_feed(
    request: Request,
    body: Annotated[CreateFeedBody, Body()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    feed, token = await service.create_feed(
        db=request.app.state.db, principal=principal, body=body, request_id=_request_id(request)
    )
    path = f"/calendar/{token}.ics"
    return ok(feed=feed, url=str(request.base_url).rstrip("/") + path, path=path)


@router.get(
    "/calendar/feeds",
    summary="Calendar feeds the caller may see (without their URLs)",
    responses=error_responses(400, 401),
)
async def list_feeds(
    request: Request,
    params: Annotated[ListFeedsParams, Query()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    return await service.list_feeds(db=request.app.state.db, principal=principal, params=params)


@router.delete(
    "/calendar/feeds/{feed_id}",
    summary="Revoke a calendar feed; its URL answers 404 from then on",
    responses=error_responses(400, 401, 404),
)
async def revoke_feed(
    request: Request,
    feed_id: uuid.UUID,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    return await service.revoke_feed(
        db=request.app.state.db,
        principal=principal,
        feed_id=feed_id,
        now=utcnow(),
        request_id=_request_id(request),
    )


@router.get(
    "/calendar/{feed_token}.ics",
    summary="A therapist's sessions as iCalendar (no bearer token: the URL is the secret)",
    response_class=Response,
    responses={
        200: {"content": {"text/calendar": {}}, "description": "RFC 5545 calendar"},
        **error_responses(404),
    },
)
async def calendar_feed(request: Request, feed_token: str) -> Response:
    rendered = await service.render_feed(db=request.app.state.db, token=feed_token, now=utcnow())
    note_phi_read(
        request,
        None,
        endpoint="calendar-feed",
        sessions=[{"client_id": s.client_id} for s in rendered.sessions],
        organization_id=rendered.organization_id,
        entity_type="calendar_feed",
        entity_id=str(rendered.feed_id),
    )
    # Calendar clients that revalidate get a 304 without the body when nothing changed.
    etag = '"' + hashlib.sha256(rendered.body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Content-Disposition": 'inline; filename="sessions.ics"'}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="text/calendar; charset=utf-8", headers=headers)
