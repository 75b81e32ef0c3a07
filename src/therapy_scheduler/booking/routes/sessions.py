"""Booking routes: a session's lifecycle after booking (start, complete, no-show, reactivate, reschedule)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import lifecycle, reschedule
from therapy_scheduler.booking.routes.common import (
    HOLD_CODES,
    Caller,
    IdempotencyKey,
    idempotent,
    outcome,
    request_id,
)
from therapy_scheduler.booking.schemas import (
    RescheduleBody,
)
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["booking"])


SessionId = Annotated[uuid.UUID, Path(description="The session's id")]
_LIFECYCLE_404 = "No such session visible to the caller (NOT_FOUND)"
_LIFECYCLE_403 = (
    "A therapist's view of a caseload client's session with another therapist (FORBIDDEN)"
)


_TRANSITION_409 = "INVALID_TRANSITION (details.from, details.to), IDEMPOTENCY_IN_PROGRESS"
_TRANSITION_ERRORS = error_responses(
    400, 401, 403, 404, 409, 422, s403=_LIFECYCLE_403, s404=_LIFECYCLE_404, s409=_TRANSITION_409
)


async def _transition(
    request: Request,
    principal: Principal,
    session_id: uuid.UUID,
    idempotency_key: str | None,
    *,
    action: str,
    endpoint: str,
) -> Response:
    async with outcome(request, action):
        return await idempotent(
            request,
            principal,
            endpoint,
            idempotency_key,
            {"session_id": str(session_id)},
            lambda finalize: lifecycle.transition(
                db=request.app.state.db,
                principal=principal,
                session_id=session_id,
                action=action,
                now=utcnow(),
                request_id=request_id(request),
                finalize=finalize,
            ),
        )


@router.post(
    "/sessions/{session_id}/start",
    summary="Start a session (scheduled → in_progress)",
    responses=_TRANSITION_ERRORS,
)
async def post_session_start(
    request: Request,
    session_id: SessionId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _transition(
        request,
        principal,
        session_id,
        idempotency_key,
        action="start",
        endpoint="POST /sessions/{id}/start",
    )


@router.post(
    "/sessions/{session_id}/complete",
    summary="Complete a session (scheduled or in_progress → completed)",
    responses=_TRANSITION_ERRORS,
)
async def post_session_complete(
    request: Request,
    session_id: SessionId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _transition(
        request,
        principal,
        session_id,
        idempotency_key,
        action="complete",
        endpoint="POST /sessions/{id}/complete",
    )


@router.post(
    "/sessions/{session_id}/no-show",
    summary="Record a no-show (scheduled → no_show; its units return to the authorization)",
    responses=_TRANSITION_ERRORS,
)
async def post_session_no_show(
    request: Request,
    session_id: SessionId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _transition(
        request,
        principal,
        session_id,
        idempotency_key,
        action="no_show",
        endpoint="POST /sessions/{id}/no-show",
    )


@router.post(
    "/sessions/{session_id}/reactivate",
    summary="Reactivate a cancelled session (cancelled → scheduled) if its slot and units are still free",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        422,
        s403=_LIFECYCLE_403,
        s404=_LIFECYCLE_404,
        s409="INVALID_TRANSITION, SESSION_IN_PAST, OUTSIDE_AVAILABILITY, INSUFFICIENT_BREAK, "
        "THERAPIST_CONFLICT, CLIENT_CONFLICT, THERAPIST_HOLD_CONFLICT, CLIENT_HOLD_CONFLICT, "
        "AUTHORIZATION_EXHAUSTED, AUTHORIZATION_MISSING, IDEMPOTENCY_IN_PROGRESS",
    ),
)
async def post_session_reactivate(
    request: Request,
    session_id: SessionId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _transition(
        request,
        principal,
        session_id,
        idempotency_key,
        action="reactivate",
        endpoint="POST /sessions/{id}/reactivate",
    )


@router.post(
    "/sessions/{session_id}/reschedule",
    summary="Move a scheduled session to a new time (a hold then a confirm, atomically)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        s403=_LIFECYCLE_403,
        s404=_LIFECYCLE_404,
        s409=HOLD_CODES,
    ),
)
async def post_reschedule(
    request: Request,
    session_id: SessionId,
    body: RescheduleBody,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async with outcome(request, "reschedule"):
        return await idempotent(
            request,
            principal,
            "POST /sessions/{id}/reschedule",
            idempotency_key,
            {"session_id": str(session_id), **body.model_dump(mode="json", exclude_unset=True)},
            lambda finalize: reschedule.reschedule(
                db=request.app.state.db,
                principal=principal,
                session_id=session_id,
                body=body,
                now=utcnow(),
                request_id=request_id(request),
                finalize=finalize,
            ),
        )
