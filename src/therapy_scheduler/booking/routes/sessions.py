"""Booking routes: a session's lifecycle after booking (start, complete, no-show, reactivate, reschedule)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from therapy_scheduler.booking import lifecycle, reschedule
from therapy_scheduler.booking.routes.common import (
    HOLD_CODES,
    Caller,
    idempotent,
    outcome,
    request_id,
)
from therapy_scheduler.booking.schemas import (
    RescheduleBody,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey
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


def _transition(action: str, endpoint: str) -> Callable[..., Awaitable[Response]]:
    """The route function of one status transition (the service: `booking/lifecycle.py`)."""

    async def route(
        request: Request,
        session_id: SessionId,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
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

    route.__name__ = f"post_session_{action}"
    return route


# Each path is written out in full so that it can be found by searching for it.
post_session_start = router.post(
    "/sessions/{session_id}/start",
    summary="Start a session (scheduled → in_progress)",
    responses=_TRANSITION_ERRORS,
)(_transition("start", "POST /sessions/{id}/start"))
post_session_complete = router.post(
    "/sessions/{session_id}/complete",
    summary="Complete a session (scheduled or in_progress → completed)",
    responses=_TRANSITION_ERRORS,
)(_transition("complete", "POST /sessions/{id}/complete"))
post_session_no_show = router.post(
    "/sessions/{session_id}/no-show",
    summary="Record a no-show (scheduled → no_show; its units return to the authorization)",
    responses=_TRANSITION_ERRORS,
)(_transition("no_show", "POST /sessions/{id}/no-show"))
post_session_reactivate = router.post(
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
        "SUPERVISION_NOT_CONTAINED, SUPERVISOR_CREDENTIAL_REQUIRED, "
        "AUTHORIZATION_EXHAUSTED, AUTHORIZATION_MISSING, IDEMPOTENCY_IN_PROGRESS",
    ),
)(_transition("reactivate", "POST /sessions/{id}/reactivate"))


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
