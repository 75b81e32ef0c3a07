"""HTTP routes of the waitlist (docs/WAITLIST.md): entries, the candidates for a gap, offers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response

from therapy_scheduler.audit.phi import note_phi_read_of
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.infra.idempotency import Finalize, IdempotencyKey, run_idempotent
from therapy_scheduler.kit.openapi import error_responses
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.waitlist import offers, service
from therapy_scheduler.waitlist.schemas import (
    EntryCreate,
    EntryListParams,
    EntryPatch,
    MatchParams,
    QueryInstant,
)

router = APIRouter(tags=["waitlist"])
Caller = Annotated[Principal, Depends(current_principal)]
EntryId = Annotated[uuid.UUID, Path(description="The waitlist entry's id")]
OfferId = Annotated[uuid.UUID, Path(description="The offer's id")]


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _idempotent(
    request: Request,
    principal: Principal,
    *,
    endpoint: str,
    key: str | None,
    payload: dict[str, Any],
    run: Callable[[Finalize | None], Awaitable[dict[str, Any]]],
    status: int = 200,
) -> Response:
    """The write under its Idempotency-Key (infra/idempotency.py): the answer is stored in the
    write's own transaction, replayed for the same key and payload."""
    return await run_idempotent(
        request.app.state.db,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        endpoint=endpoint,
        key=key,
        payload=payload,
        request_id=_request_id(request),
        action=run,
        status=status,
    )


def _shown(request: Request, principal: Principal, endpoint: str, entries: list[Any]) -> None:
    """Entries show a client and a note: the read is audited like a session's."""
    note_phi_read_of(
        request,
        principal,
        endpoint=endpoint,
        session_count=len(entries),
        client_ids=[e["client_id"] for e in entries],
        entity_type="waitlist_entries",
    )


@router.post(
    "/waitlist",
    status_code=201,
    summary="Put a client on the waitlist (admin, scheduler)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        s409="IDEMPOTENCY_IN_PROGRESS",
        s422="IDEMPOTENCY_KEY_REUSED (the key was used with another body)",
    ),
)
async def create_entry(
    request: Request,
    body: Annotated[EntryCreate, Body()],
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _idempotent(
        request,
        principal,
        endpoint="POST /waitlist",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=lambda finalize: service.create_entry(
            db=request.app.state.db,
            principal=principal,
            body=body,
            request_id=_request_id(request),
            finalize=finalize,
        ),
        status=201,
    )


@router.get(
    "/waitlist",
    summary="Waitlist entries in offer order, a page at a time (admin, scheduler)",
    responses=error_responses(400, 401, 403),
)
async def list_entries(
    request: Request, params: Annotated[EntryListParams, Query()], principal: Caller
) -> dict[str, Any]:
    page = await service.list_entries(db=request.app.state.db, principal=principal, params=params)
    _shown(request, principal, "GET /waitlist", page["data"])
    return page


@router.get(
    "/waitlist/matches",
    summary="The waiting entries that fit a therapist's gap now, every booking rule applied",
    responses=error_responses(400, 401, 403, 404),
)
async def list_matches(
    request: Request, params: Annotated[MatchParams, Query()], principal: Caller
) -> dict[str, Any]:
    found = await service.matches(db=request.app.state.db, principal=principal, params=params)
    _shown(request, principal, "GET /waitlist/matches", [m["entry"] for m in found["data"]])
    return found


@router.get(
    "/waitlist/offers",
    summary="Open offers (optionally in a range or of one therapist) and the waitlist's length",
    responses=error_responses(400, 401, 403),
)
async def list_open_offers(
    request: Request,
    principal: Caller,
    start: Annotated[QueryInstant | None, Query()] = None,
    end: Annotated[QueryInstant | None, Query()] = None,
    therapist_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict[str, Any]:
    return await service.board_summary(
        db=request.app.state.db,
        principal=principal,
        start=start,
        end=end,
        therapist_id=therapist_id,
    )


@router.post(
    "/waitlist/offers/{offer_id}/accept",
    summary="Accept an offer: its hold becomes a scheduled session",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        410,
        422,
        s409="OFFER_NOT_OPEN, a booking conflict, IDEMPOTENCY_IN_PROGRESS",
        s410="OFFER_EXPIRED",
        s422="IDEMPOTENCY_KEY_REUSED (the key was used for another offer)",
    ),
)
async def accept_offer(
    request: Request,
    offer_id: OfferId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _idempotent(
        request,
        principal,
        endpoint="POST /waitlist/offers/{offer_id}/accept",
        key=idempotency_key,
        payload={"offer_id": str(offer_id)},
        run=lambda finalize: offers.accept_offer(
            db=request.app.state.db,
            principal=principal,
            offer_id=offer_id,
            now=utcnow(),
            request_id=_request_id(request),
            metrics=request.app.state.metrics,
            finalize=finalize,
        ),
    )


@router.post(
    "/waitlist/offers/{offer_id}/decline",
    summary="Decline an offer: its hold is released and the slot is offered to the next entry",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        410,
        422,
        s409="OFFER_NOT_OPEN, IDEMPOTENCY_IN_PROGRESS",
        s410="OFFER_EXPIRED",
        s422="IDEMPOTENCY_KEY_REUSED (the key was used for another offer)",
    ),
)
async def decline_offer(
    request: Request,
    offer_id: OfferId,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _idempotent(
        request,
        principal,
        endpoint="POST /waitlist/offers/{offer_id}/decline",
        key=idempotency_key,
        payload={"offer_id": str(offer_id)},
        run=lambda finalize: offers.decline_offer(
            db=request.app.state.db,
            principal=principal,
            offer_id=offer_id,
            now=utcnow(),
            request_id=_request_id(request),
            metrics=request.app.state.metrics,
            finalize=finalize,
        ),
    )


@router.get(
    "/waitlist/{entry_id}",
    summary="One waitlist entry (admin, scheduler)",
    responses=error_responses(400, 401, 403, 404),
)
async def get_entry(request: Request, entry_id: EntryId, principal: Caller) -> dict[str, Any]:
    shown = await service.get_entry(db=request.app.state.db, principal=principal, entry_id=entry_id)
    _shown(request, principal, "GET /waitlist/{entry_id}", [shown["data"]])
    return shown


@router.patch(
    "/waitlist/{entry_id}",
    summary="Change a waitlist entry (admin, scheduler)",
    responses=error_responses(400, 401, 403, 404, 413, 415),
)
async def patch_entry(
    request: Request, entry_id: EntryId, body: Annotated[EntryPatch, Body()], principal: Caller
) -> dict[str, Any]:
    return await service.update_entry(
        db=request.app.state.db,
        principal=principal,
        entry_id=entry_id,
        patch=body,
        request_id=_request_id(request),
    )


@router.delete(
    "/waitlist/{entry_id}",
    summary="Take an entry off the waitlist (admin, scheduler)",
    responses=error_responses(400, 401, 403, 404, 409, s409="ENTRY_HAS_OPEN_OFFER"),
)
async def delete_entry(request: Request, entry_id: EntryId, principal: Caller) -> dict[str, Any]:
    return await service.remove_entry(
        db=request.app.state.db,
        principal=principal,
        entry_id=entry_id,
        request_id=_request_id(request),
    )
