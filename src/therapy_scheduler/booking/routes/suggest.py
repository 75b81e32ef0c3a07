"""Booking route: the next free slots for a therapist and a client."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from therapy_scheduler.booking import suggest
from therapy_scheduler.booking.routes.common import (
    Caller,
)
from therapy_scheduler.booking.schemas import (
    SuggestBody,
)
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["booking"])


@router.post(
    "/suggest-alternative-times",
    summary=(
        "The next slots a hold would take for a therapist and a client (both calendars, hours, "
        "travel, supervision overlap, units, weekly caps)"
    ),
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
