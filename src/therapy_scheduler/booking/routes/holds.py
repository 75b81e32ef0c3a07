"""Booking routes: hold, show and release a hold, confirm it, cancel sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read_of
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.booking import access, cancel, confirm, hold
from therapy_scheduler.booking.routes.common import (
    HOLD_CODES,
    Bearer,
    Caller,
    HoldKey,
    outcome,
    request_id,
    write,
)
from therapy_scheduler.booking.schemas import (
    CancelBody,
    ConfirmBody,
    HoldBody,
)
from therapy_scheduler.infra.idempotency import IdempotencyKey
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["booking"])


@router.post(
    "/sessions/hold",
    summary="Hold one slot, explicit occurrences, or a recurrence for a therapist and client; "
    "with dry_run, forecast every occurrence without holding",
    response_model=None,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, s409=HOLD_CODES),
)
async def post_hold(
    request: Request, body: HoldBody, user_id: Bearer, idempotency_key: IdempotencyKey = None
) -> Response | dict[str, Any]:
    if body.dry_run:
        # A forecast writes nothing: the Idempotency-Key is neither claimed nor replayed.
        return await forecast(request, body, await current_principal(request))
    return await write(
        request,
        user_id,
        action="hold",
        endpoint="POST /sessions/hold",
        key=idempotency_key,
        body=body,
        service=hold.create_hold,
    )


async def forecast(request: Request, body: HoldBody, principal: Principal) -> dict[str, Any]:
    """`dry_run`: the forecast, its PHI read audited (the client's authorization and calendar)."""
    async with outcome(request, "forecast"):
        result = await hold.forecast_hold(
            db=request.app.state.db, principal=principal, body=body, now=utcnow()
        )
    note_phi_read_of(
        request,
        principal,
        endpoint="POST /sessions/hold (dry_run)",
        session_count=result["occurrence_count"],
        client_ids=[result["client_id"]],
        entity_type="client",
        entity_id=result["client_id"],
    )
    return result


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
    async with outcome(request, "release"):
        return await access.release_hold(
            db=request.app.state.db,
            principal=principal,
            hold_key=hold_key,
            now=utcnow(),
            request_id=request_id(request),
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
        "SUPERVISION_NOT_CONTAINED (the session a held supervision was to supervise is gone), "
        "IDEMPOTENCY_IN_PROGRESS",
        s410="The hold expired (HOLD_EXPIRED) or was released (HOLD_RELEASED)",
    ),
)
async def post_confirm(
    request: Request, body: ConfirmBody, user_id: Bearer, idempotency_key: IdempotencyKey = None
) -> Response:
    return await write(
        request,
        user_id,
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
    request: Request, body: CancelBody, user_id: Bearer, idempotency_key: IdempotencyKey = None
) -> Response:
    return await write(
        request,
        user_id,
        action="cancel",
        endpoint="POST /sessions/cancel",
        key=idempotency_key,
        body=body,
        service=cancel.cancel_session,
    )
