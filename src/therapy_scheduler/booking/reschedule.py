"""Rescheduling (docs/BOOKING.md, lifecycle): move one scheduled session to a new time through a hold.

`POST /sessions/{id}/reschedule` holds the new slot for the session (`session.session_id`, so every
booking rule applies and the session's own time and units do not count against it), then confirms
the hold, which moves the same session row (same id, notes and series; history in the audit log). If
the confirm fails, the hold is released and nothing has changed. The two-step form (`POST
/sessions/hold` with `session.session_id`, then `POST /sessions/confirm`) stays available for a UI
that shows the hold first.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import session_scope
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.access import release_hold
from therapy_scheduler.booking.confirm import confirm_hold
from therapy_scheduler.booking.hold import create_hold
from therapy_scheduler.booking.schemas import (
    ConfirmBody,
    ConfirmSessionIn,
    HoldBody,
    HoldSessionIn,
    RescheduleBody,
)
from therapy_scheduler.errors import AppError, Forbidden, NotFound
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc

RESCHEDULE_HOLD_SECONDS = 60


async def reschedule(
    *,
    db: Database,
    principal: Principal,
    session_id: uuid.UUID,
    body: RescheduleBody,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    async with db.read() as conn:
        current = await queries.session_for_change(conn, session_id, session_scope(principal))
    if current is None:
        raise NotFound("Session not found", details={"field": "session_id"})
    if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
        current.therapist_id != principal.therapist_id
    ):
        raise Forbidden("A therapist may reschedule only their own sessions")
    keep_place = body.location_id is None and body.location_type is None
    duration = body.duration_minutes
    if body.end_time is None and duration is None:
        duration = int((current.end_time - current.start_time).total_seconds() // 60)
    held = await create_hold(
        db=db,
        principal=principal,
        body=HoldBody(
            session=HoldSessionIn(
                therapist_id=current.therapist_id,
                client_id=current.client_id,
                start_time=body.start_time,
                end_time=body.end_time,
                location_id=current.location_id if keep_place else body.location_id,
                location_type=current.location_type if keep_place else body.location_type,
                service_code=body.service_code or current.service_code,
                session_id=current.id,
            ),
            duration_minutes=duration,
            time_zone=body.time_zone,
            hold_seconds=RESCHEDULE_HOLD_SECONDS,
        ),
        now=now,
        request_id=request_id,
    )
    first = held["occurrences"][0]
    try:
        moved = await confirm_hold(
            db=db,
            principal=principal,
            body=ConfirmBody(
                hold_key=held["hold_key"],
                session=ConfirmSessionIn(
                    start_time=first["start_time"], end_time=first["end_time"], notes=body.notes
                ),
            ),
            now=now,
            request_id=request_id,
            finalize=_with_previous(finalize, current, held),
        )
    except AppError:
        await release_hold(
            db=db, principal=principal, hold_key=held["hold_key"], now=now, request_id=request_id
        )
        raise
    return _shape(moved, current, held)


def _shape(moved: dict[str, Any], current: Any, held: dict[str, Any]) -> dict[str, Any]:
    return ok(
        session_id=str(current.id),
        previous={
            "start_time": iso_utc(current.start_time),
            "end_time": iso_utc(current.end_time),
        },
        session=moved["session"],
        warnings=held["warnings"],
    )


def _with_previous(
    finalize: Finalize | None, current: Any, held: dict[str, Any]
) -> Finalize | None:
    """Store the reschedule's own response shape (not the confirm's) for idempotent replays."""
    if finalize is None:
        return None
    outer = finalize

    async def store(conn: Any, body: dict[str, Any]) -> None:
        await outer(conn, _shape(body, current, held))

    return store
