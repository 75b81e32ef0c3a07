"""Holding slots (docs/BOOKING.md): every check in its order, all-or-nothing under one `hold_key`."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.alternatives import find_alternatives
from therapy_scheduler.booking.forecast import AUTHORIZATION_ERRORS, forecast_json
from therapy_scheduler.booking.occurrences import (
    Occurrence,
    check_ranges,
    requested_occurrences,
)
from therapy_scheduler.booking.parties import hold_place, require_people, reschedulable
from therapy_scheduler.booking.rules.apply import (
    Booking,
    Refused,
    check_hold_limit,
    check_slots,
    confirm_hold_limit,
    find_problems,
)
from therapy_scheduler.booking.rules.constraints import overlap_as_conflict
from therapy_scheduler.booking.schemas import HoldBody
from therapy_scheduler.errors import AppError, Forbidden
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc, utcnow, zone

PLACE_ERRORS = frozenset(
    {
        "OUTSIDE_AVAILABILITY",
        "INSUFFICIENT_BREAK",
        "INSUFFICIENT_TRAVEL_TIME",
        "THERAPIST_CONFLICT",
        "CLIENT_CONFLICT",
        "THERAPIST_HOLD_CONFLICT",
        "CLIENT_HOLD_CONFLICT",
        "SUPERVISION_NOT_CONTAINED",
        "SUPERVISOR_CREDENTIAL_REQUIRED",
    }
)


def new_hold_key() -> str:
    """192 random bits, URL-safe: unguessable, so knowing a key is the capability to use it."""
    return secrets.token_urlsafe(24)


async def create_hold(
    *,
    db: Database,
    principal: Principal,
    body: HoldBody,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
    expires_in: timedelta | None = None,
    alternatives: bool = True,
) -> dict[str, Any]:
    """Hold every requested occurrence for one therapist and client, or nothing (docs/BOOKING.md).

    `expires_in` overrides the hold's lifetime (a waitlist offer lasts the organization's offer TTL,
    docs/WAITLIST.md); without `alternatives` a refusal carries none (the matcher tries elsewhere)."""
    block = body.session
    if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
        principal.therapist_id is None or block.therapist_id != principal.therapist_id
    ):
        raise Forbidden("A therapist may hold sessions only for themselves")
    occurrences = requested_occurrences(body, zone(body.time_zone))
    try:
        return await _create(
            db, principal, body, now, request_id, finalize, occurrences, expires_in
        )
    except Refused as refused:
        if not alternatives:
            problem = refused.problem
            raise problem.error(problem.message, details=dict(problem.details)) from None
        # Alternatives are searched after the write transaction has ended, so that the (slower)
        # search never holds the booking locks.
        raise await error_with_alternatives(db, principal, refused) from None


async def forecast_hold(
    *, db: Database, principal: Principal, body: HoldBody, now: datetime
) -> dict[str, Any]:
    """The hold's forecast (`dry_run`): every occurrence checked as the hold would check it, in one
    read, taking no lock and writing nothing (docs/BOOKING.md "Forecast")."""
    block = body.session
    if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
        principal.therapist_id is None or block.therapist_id != principal.therapist_id
    ):
        raise Forbidden("A therapist may hold sessions only for themselves")
    occurrences = requested_occurrences(body, zone(body.time_zone))
    service_code = block.service_code or principal.settings.default_service_code
    async with db.read() as conn:
        people = await require_people(conn, principal, block.therapist_id, block.client_id)
        location_id, location_type = await hold_place(conn, principal, body)
        reschedule = await reschedulable(conn, principal, body)
        check_ranges(occurrences, now)
        booking = Booking(
            therapist_id=block.therapist_id,
            client_id=block.client_id,
            occurrences=occurrences,
            service_code=service_code,
            location_id=location_id,
            location_type=location_type,
            replacing=reschedule,
            therapist_time_zone=people.time_zone,
            time_zone=body.time_zone,
        )
        found = await find_problems(conn, principal, booking, now, lock=False)
    return ok(
        dry_run=True,
        therapist_id=str(block.therapist_id),
        client_id=str(block.client_id),
        service_code=service_code,
        location_id=str(location_id) if location_id else None,
        location_type=location_type,
        time_zone=body.time_zone,
        **forecast_json(booking, found, principal),
    )


async def _create(
    db: Database,
    principal: Principal,
    body: HoldBody,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None,
    occurrences: list[Occurrence],
    expires_in: timedelta | None = None,
) -> dict[str, Any]:
    block = body.session
    settings = principal.settings
    service_code = block.service_code or settings.default_service_code
    hold_seconds = body.hold_seconds or settings.hold_seconds_default
    async with overlap_as_conflict(), db.write() as conn:
        # The people, the caller's active holds and the therapist's working hours and time off,
        # read in one statement, which also takes the people's locks.
        people = await require_people(
            conn,
            principal,
            block.therapist_id,
            block.client_id,
            holds_at=now,
            calendar=(
                (min(o.start for o in occurrences), max(o.end for o in occurrences))
                if settings.availability_policy != "off"
                else None
            ),
            lock=True,
        )
        location_id, location_type = await hold_place(conn, principal, body)
        reschedule = await reschedulable(conn, principal, body)
        check_ranges(occurrences, now)
        check_hold_limit(principal, people.active_holds, people.next_expiry)

        checked = await check_slots(
            conn,
            principal,
            Booking(
                therapist_id=block.therapist_id,
                client_id=block.client_id,
                occurrences=occurrences,
                service_code=service_code,
                location_id=location_id,
                location_type=location_type,
                replacing=reschedule,
                therapist_time_zone=people.time_zone,
                time_zone=body.time_zone,
                calendar=people.calendar,
                locked=people.locked,
            ),
            now,
        )
        now, plans, warnings = checked.now, checked.plans, checked.warnings

        hold_id = uuid.uuid4()
        hold_key = new_hold_key()
        expires_at = now + (expires_in or timedelta(seconds=hold_seconds))
        await queries.insert_hold(
            conn,
            hold_id=hold_id,
            organization_id=principal.organization_id,
            hold_key=hold_key,
            therapist_id=block.therapist_id,
            client_id=block.client_id,
            created_by=principal.user_id,
            expires_at=expires_at,
            time_zone=body.time_zone,
            service_code=service_code,
            location_id=location_id,
            location_type=location_type,
            reschedule_session_id=reschedule.id if reschedule else None,
            recurrence=body.recurrence.model_dump(mode="json") if body.recurrence else None,
            metadata=body.metadata,
            created_at=now,
        )
        await queries.insert_hold_occurrences(
            conn,
            hold_id=hold_id,
            organization_id=principal.organization_id,
            therapist_id=block.therapist_id,
            client_id=block.client_id,
            expires_at=expires_at,
            service_code=service_code,
            slots=[
                (o.start, o.end, plan.authorization_id, plan.units)
                for o, plan in zip(occurrences, plans, strict=True)
            ],
            supervises=checked.supervises,
        )
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="hold.create",
            entity_type="hold",
            entity_id=hold_id,
            request_id=request_id,
            details={
                "therapist_id": str(block.therapist_id),
                "client_id": str(block.client_id),
                "occurrences": len(occurrences),
                "service_code": service_code,
                "hold_seconds": hold_seconds,
                "warnings": sorted({w["code"] for w in warnings}),
                "reschedule_session_id": str(reschedule.id) if reschedule else None,
            },
            client_ids=[block.client_id],
        )
        await outbox.emit_hold_event(
            conn,
            organization_id=principal.organization_id,
            event_type="hold.created",
            hold_id=hold_id,
            therapist_id=block.therapist_id,
            client_id=block.client_id,
        )
        response: dict[str, Any] = ok(
            hold_key=hold_key,
            expires_at=iso_utc(expires_at),
            occurrences=[o.as_json() for o in occurrences],
            warnings=warnings,
            status="active",
            hold_seconds=hold_seconds,
            therapist_id=str(block.therapist_id),
            client_id=str(block.client_id),
            service_code=service_code,
            location_id=str(location_id) if location_id else None,
            location_type=location_type,
            time_zone=body.time_zone,
            session_id=str(reschedule.id) if reschedule else None,
        )
        if finalize is not None:
            await finalize(conn, response)
        # Last, so that the user's lock (every hold of this user waits for it) is held only for
        # this count and the COMMIT.
        await confirm_hold_limit(conn, principal, now, hold_id)
    return response


async def error_with_alternatives(
    db: Database,
    principal: Principal,
    refused: Refused,
) -> AppError:
    """The refusal as its typed error; slot errors also offer alternatives from the shared engine,
    searched in a read transaction after the booking transaction has ended."""
    problem, booking = refused.problem, refused.booking
    details: dict[str, Any] = {"occurrence_index": problem.occurrence_index, **problem.details}
    if principal.can(Capability.SEE_AUTHORIZATIONS):
        details.update(problem.private_details)
    if problem.error.code in AUTHORIZATION_ERRORS and refused.found is not None:
        details["forecast"] = forecast_json(booking, refused.found, principal)
    if problem.error.code in PLACE_ERRORS:
        o = booking.occurrences[problem.occurrence_index]
        async with db.read() as conn:
            details["alternatives"] = await find_alternatives(
                conn,
                principal=principal,
                therapist_id=booking.therapist_id,
                client_id=booking.client_id,
                around=o.start,
                duration=o.end - o.start,
                now=utcnow(),
                service_code=booking.service_code,
                location_id=booking.location_id,
                location_type=booking.location_type,
                exclude_session_id=booking.replacing_id,
                refused_code=problem.error.code,
            )
    return problem.error(problem.message, details=details)
