"""HTTP routes of the write side. Thin: parse, resolve the caller, call one service function."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from starlette.responses import Response

from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.booking import access, cancel, confirm, hold, lifecycle, reschedule, suggest
from therapy_scheduler.booking.schemas import (
    CancelBody,
    ConfirmBody,
    HoldBody,
    RescheduleBody,
    SuggestBody,
)
from therapy_scheduler.errors import AppError
from therapy_scheduler.infra.idempotency import Finalize, run_idempotent
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["booking"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes a retry safe: the same key and body replay the first response (24 h).",
    ),
]
HoldKey = Annotated[str, Path(min_length=1, max_length=64)]
Caller = Annotated[Principal, Depends(current_principal)]

_HOLD_CODES = (
    "409: OUTSIDE_AVAILABILITY, INSUFFICIENT_BREAK, THERAPIST_CONFLICT, CLIENT_CONFLICT, "
    "THERAPIST_HOLD_CONFLICT, CLIENT_HOLD_CONFLICT, AUTHORIZATION_EXHAUSTED, AUTHORIZATION_MISSING, "
    "SESSION_NOT_RESCHEDULABLE, HOLD_LIMIT_REACHED, IDEMPOTENCY_IN_PROGRESS"
)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


@asynccontextmanager
async def _outcome(request: Request, action: str) -> AsyncIterator[None]:
    """Count booking outcomes by action and result code (Prometheus)."""
    counter = request.app.state.metrics.bookings
    try:
        yield
    except AppError as exc:
        counter.labels(action, exc.code).inc()
        raise
    counter.labels(action, "ok").inc()


async def _idempotent(
    request: Request,
    principal: Principal,
    endpoint: str,
    key: str | None,
    payload: dict[str, Any],
    run: Any,
) -> Response:
    async def action(finalize: Finalize | None) -> dict[str, Any]:
        result: dict[str, Any] = await run(finalize)
        return result

    return await run_idempotent(
        request.app.state.db,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        endpoint=endpoint,
        key=key,
        payload=payload,
        request_id=_request_id(request),
        action=action,
    )


async def _write(
    request: Request,
    principal: Principal,
    *,
    action: str,
    endpoint: str,
    key: str | None,
    body: Any,
    service: Any,
) -> Response:
    """One booking write: outcome metrics, Idempotency-Key, then `service(db=…, body=…, finalize=…)`."""
    async with _outcome(request, action):
        return await _idempotent(
            request,
            principal,
            endpoint,
            key,
            body.model_dump(mode="json", exclude_unset=True),
            lambda finalize: service(
                db=request.app.state.db,
                principal=principal,
                body=body,
                now=utcnow(),
                request_id=_request_id(request),
                finalize=finalize,
            ),
        )


@router.post(
    "/sessions/hold",
    summary="Hold one slot, explicit occurrences, or a recurrence for a therapist and client",
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, s409=_HOLD_CODES),
)
async def post_hold(
    request: Request, body: HoldBody, principal: Caller, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _write(
        request,
        principal,
        action="hold",
        endpoint="POST /sessions/hold",
        key=idempotency_key,
        body=body,
        service=hold.create_hold,
    )


@router.get(
    "/sessions/hold/{hold_key}",
    summary="Show a hold",
    responses=error_responses(
        400, 401, 404, s404="No such hold visible to the caller (HOLD_NOT_FOUND)"
    ),
)
async def get_hold(request: Request, hold_key: HoldKey, principal: Caller) -> dict[str, Any]:
    return await access.get_hold(
        db=request.app.state.db, principal=principal, hold_key=hold_key, now=utcnow()
    )


@router.delete(
    "/sessions/hold/{hold_key}",
    summary="Release a hold (its slots and reserved units)",
    responses=error_responses(
        400,
        401,
        404,
        409,
        s404="No such hold visible to the caller (HOLD_NOT_FOUND)",
        s409="The hold was confirmed (HOLD_ALREADY_CONFIRMED)",
    ),
)
async def delete_hold(request: Request, hold_key: HoldKey, principal: Caller) -> dict[str, Any]:
    async with _outcome(request, "release"):
        return await access.release_hold(
            db=request.app.state.db,
            principal=principal,
            hold_key=hold_key,
            now=utcnow(),
            request_id=_request_id(request),
        )


@router.post(
    "/sessions/confirm",
    summary="Turn every occurrence of a hold into scheduled sessions, atomically",
    responses=error_responses(
        400,
        401,
        404,
        409,
        410,
        413,
        415,
        422,
        s404="No such hold visible to the caller (HOLD_NOT_FOUND)",
        s409="HOLD_MISMATCH, HOLD_ALREADY_CONFIRMED, SESSION_NOT_RESCHEDULABLE, "
        "IDEMPOTENCY_IN_PROGRESS",
        s410="The hold expired (HOLD_EXPIRED) or was released (HOLD_RELEASED)",
    ),
)
async def post_confirm(
    request: Request, body: ConfirmBody, principal: Caller, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _write(
        request,
        principal,
        action="confirm",
        endpoint="POST /sessions/confirm",
        key=idempotency_key,
        body=body,
        service=confirm.confirm_hold,
    )


@router.post(
    "/sessions/cancel",
    summary="Cancel a session (or the rest, or all, of its series)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        s409="SESSION_NOT_CANCELLABLE, IDEMPOTENCY_IN_PROGRESS",
    ),
)
async def post_cancel(
    request: Request, body: CancelBody, principal: Caller, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _write(
        request,
        principal,
        action="cancel",
        endpoint="POST /sessions/cancel",
        key=idempotency_key,
        body=body,
        service=cancel.cancel_session,
    )


# --- lifecycle after booking (docs/BOOKING.md) ---------------------------------------------------

SessionId = Annotated[uuid.UUID, Path(description="The session's id")]
_LIFECYCLE_404 = "No such session visible to the caller (NOT_FOUND)"
_LIFECYCLE_403 = (
    "A therapist's view of a caseload client's session with another therapist (FORBIDDEN)"
)


def _lifecycle_route(action: str, path: str, summary: str, s409: str) -> None:
    async def endpoint(
        request: Request,
        session_id: SessionId,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async with _outcome(request, action):
            return await _idempotent(
                request,
                principal,
                f"POST /sessions/{{id}}/{path}",
                idempotency_key,
                {"session_id": str(session_id)},
                lambda finalize: lifecycle.transition(
                    db=request.app.state.db,
                    principal=principal,
                    session_id=session_id,
                    action=action,
                    now=utcnow(),
                    request_id=_request_id(request),
                    finalize=finalize,
                ),
            )

    endpoint.__name__ = f"post_session_{action}"
    router.post(
        f"/sessions/{{session_id}}/{path}",
        summary=summary,
        responses=error_responses(
            400, 401, 403, 404, 409, 422, s403=_LIFECYCLE_403, s404=_LIFECYCLE_404, s409=s409
        ),
    )(endpoint)


_lifecycle_route(
    "start",
    "start",
    "Start a session (scheduled → in_progress)",
    "INVALID_TRANSITION (details.from, details.to), IDEMPOTENCY_IN_PROGRESS",
)
_lifecycle_route(
    "complete",
    "complete",
    "Complete a session (scheduled or in_progress → completed)",
    "INVALID_TRANSITION (details.from, details.to), IDEMPOTENCY_IN_PROGRESS",
)
_lifecycle_route(
    "no_show",
    "no-show",
    "Record a no-show (scheduled → no_show; its units return to the authorization)",
    "INVALID_TRANSITION (details.from, details.to), IDEMPOTENCY_IN_PROGRESS",
)
_lifecycle_route(
    "reactivate",
    "reactivate",
    "Reactivate a cancelled session (cancelled → scheduled) if its slot and units are still free",
    "INVALID_TRANSITION, SESSION_IN_PAST, OUTSIDE_AVAILABILITY, INSUFFICIENT_BREAK, "
    "THERAPIST_CONFLICT, CLIENT_CONFLICT, THERAPIST_HOLD_CONFLICT, CLIENT_HOLD_CONFLICT, "
    "AUTHORIZATION_EXHAUSTED, AUTHORIZATION_MISSING, IDEMPOTENCY_IN_PROGRESS",
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
        s409=_HOLD_CODES,
    ),
)
async def post_reschedule(
    request: Request,
    session_id: SessionId,
    body: RescheduleBody,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async with _outcome(request, "reschedule"):
        return await _idempotent(
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
                request_id=_request_id(request),
                finalize=finalize,
            ),
        )


@router.post(
    "/suggest-alternative-times",
    summary="The next free slots for a therapist and a client (both calendars, hours, buffer, units)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        413,
        415,
        s400="VALIDATION_ERROR, LIMIT_EXCEEDED, NONEXISTENT_LOCAL_TIME",
        s403="A therapist asking about another therapist's calendar (FORBIDDEN)",
        s404="Therapist, client, location or session not found or not visible (NOT_FOUND)",
    ),
)
async def post_suggest(request: Request, body: SuggestBody, principal: Caller) -> dict[str, Any]:
    return await suggest.suggest(
        db=request.app.state.db, principal=principal, body=body, now=utcnow()
    )
