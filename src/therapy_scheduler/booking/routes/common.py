"""What the booking routes share: the caller, the Idempotency-Key header, outcome metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from starlette.responses import Response

from therapy_scheduler.auth.claim import caller_and_claim
from therapy_scheduler.auth.principal import Principal, bearer_user_id, current_principal
from therapy_scheduler.errors import AppError, Unauthorized
from therapy_scheduler.infra.idempotency import Finalize, run_claimed, run_idempotent
from therapy_scheduler.kit.time import utcnow

HoldKey = Annotated[str, Path(min_length=1, max_length=64)]
Caller = Annotated[Principal, Depends(current_principal)]
# The verified bearer's user id only (401 for a missing, bad or expired token): a write reads its
# caller with the claim of its Idempotency-Key (`write`).
Bearer = Annotated[uuid.UUID, Depends(bearer_user_id)]

HOLD_CODES = (
    "409: OUTSIDE_AVAILABILITY, INSUFFICIENT_BREAK, THERAPIST_CONFLICT, CLIENT_CONFLICT, "
    "THERAPIST_HOLD_CONFLICT, CLIENT_HOLD_CONFLICT, SUPERVISION_NOT_CONTAINED, "
    "SUPERVISOR_CREDENTIAL_REQUIRED, AUTHORIZATION_EXHAUSTED, AUTHORIZATION_MISSING, "
    "WEEKLY_CAP_EXCEEDED, "
    "SESSION_NOT_RESCHEDULABLE, HOLD_LIMIT_REACHED, IDEMPOTENCY_IN_PROGRESS"
)


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


@asynccontextmanager
async def outcome(request: Request, action: str) -> AsyncIterator[None]:
    """Count booking outcomes by action and result code (Prometheus). An unknown or inactive caller
    (401, found by `write` with the claim) is not a booking's outcome, as when the route's
    dependency refused them."""
    counter = request.app.state.metrics.bookings
    try:
        yield
    except Unauthorized:
        raise
    except AppError as exc:
        counter.labels(action, exc.code).inc()
        raise
    counter.labels(action, "ok").inc()


async def idempotent(
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
        request_id=request_id(request),
        action=action,
    )


async def write(
    request: Request,
    user_id: uuid.UUID,
    *,
    action: str,
    endpoint: str,
    key: str | None,
    body: Any,
    service: Any,
) -> Response:
    """One booking write: outcome metrics, the caller (the bearer's user `user_id`) and the claim of
    the Idempotency-Key in one statement (`auth/claim.py`), then `service(db=…, body=…, finalize=…)`."""
    async with outcome(request, action):
        principal, claimed = await caller_and_claim(
            request, user_id, endpoint, key, body.model_dump(mode="json", exclude_unset=True)
        )

        async def run(finalize: Finalize | None) -> dict[str, Any]:
            result: dict[str, Any] = await service(
                db=request.app.state.db,
                principal=principal,
                body=body,
                now=utcnow(),
                request_id=request_id(request),
                finalize=finalize,
            )
            return result

        return await run_claimed(claimed, request_id=request_id(request), action=run)
