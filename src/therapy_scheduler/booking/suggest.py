"""`POST /suggest-alternative-times` (docs/BOOKING.md): the next free slots for a therapist and a client.

The slots come from the shared engine (`slots.py`) that also feeds the alternatives of booking
errors; this module only resolves the caller, the people and the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import session_scope
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.occurrences import invalid, read_time
from therapy_scheduler.booking.parties import require_people
from therapy_scheduler.booking.schemas import SuggestBody
from therapy_scheduler.booking.slot_choice import earliest
from therapy_scheduler.booking.slots import SlotRequest, free_slots, load_world
from therapy_scheduler.calendar.places import travel_applies
from therapy_scheduler.errors import Forbidden, LimitExceeded, NotFound
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.params import MAX_RANGE_DAYS
from therapy_scheduler.kit.time import day_bounds, iso_utc, zone

DEFAULT_DAYS = 14


def window(body: SuggestBody, now: datetime) -> tuple[datetime, datetime]:
    """The search window `[lower, upper)` in UTC (before clipping to the future)."""
    tz = zone(body.time_zone)
    if body.start_time is not None or body.end_time is not None:
        lower = read_time(body.start_time, tz, "start_time") if body.start_time else now
        upper = (
            read_time(body.end_time, tz, "end_time")
            if body.end_time
            else lower + timedelta(days=DEFAULT_DAYS)
        )
    elif body.start_date is not None or body.end_date is not None:
        first = body.start_date or now.astimezone(tz).date()
        last = body.end_date or first + timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise invalid("end_date", "must not be before start_date")
        lower, upper = day_bounds(first, last, tz)
    else:
        lower, upper = now, now + timedelta(days=DEFAULT_DAYS)
    if lower >= upper:
        raise invalid("end_time", "must be after start_time")
    if upper - lower > timedelta(days=MAX_RANGE_DAYS):
        raise LimitExceeded(
            f"The search window is limited to {MAX_RANGE_DAYS} days",
            details={"limit": "window_days", "max": MAX_RANGE_DAYS},
        )
    return lower, upper


async def suggest(
    *, db: Database, principal: Principal, body: SuggestBody, now: datetime
) -> dict[str, Any]:
    if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
        principal.therapist_id is None or body.therapist_id != principal.therapist_id
    ):
        raise Forbidden("A therapist may look for free times only in their own calendar")
    lower, upper = window(body, now)
    settings = principal.settings
    service_code = body.service_code or settings.default_service_code
    tz = zone(body.time_zone)
    async with db.read() as conn:
        await require_people(conn, principal, body.therapist_id, body.client_id)
        location_type = body.location_type
        if body.location_id is not None:
            place = await queries.location(conn, principal.organization_id, body.location_id)
            if place is None:
                raise NotFound("Location not found", details={"field": "location_id"})
            if location_type is not None and location_type != place.location_type:
                raise invalid("location_type", "does not match the location's type")
            location_type = place.location_type
        if body.session_id is not None:
            moving = await queries.session_for_change(
                conn, body.session_id, session_scope(principal)
            )
            if moving is None:
                raise NotFound("Session not found", details={"field": "session_id"})
            if moving.therapist_id != body.therapist_id or moving.client_id != body.client_id:
                raise invalid("session_id", "the session has another therapist or client")
        req = SlotRequest(
            organization_id=principal.organization_id,
            therapist_id=body.therapist_id,
            client_id=body.client_id,
            duration=timedelta(minutes=body.duration_minutes),
            service_code=service_code,
            location_id=body.location_id,
            location_type=location_type,
            buffer_minutes=settings.buffer_minutes,
            organization_zone=principal.zone,
            check_units=settings.authorization_policy == "block",
            exclude_session_id=body.session_id,
            travel=settings if travel_applies(settings) else None,
            supervised_codes=settings.supervised_codes(service_code),
            supervising_only=body.supervising_only,
        )
        world = await load_world(conn, req, lower, upper, now)
    slots = earliest(
        free_slots(world, req, lower=lower, upper=upper, now=now, align_zone=tz), body.limit
    )
    private = principal.can(Capability.SEE_AUTHORIZATIONS)
    out: list[dict[str, Any]] = []
    for s in slots:
        item: dict[str, Any] = {
            "start_time": iso_utc(s.start),
            "end_time": iso_utc(s.end),
            "local_start_time": s.start.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            "local_end_time": s.end.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            "supervises": s.supervises,
        }
        if private:
            item["authorization_id"] = str(s.authorization_id) if s.authorization_id else None
            item["units"] = s.units
        out.append(item)
    return ok(
        slots=out,
        therapist_id=str(body.therapist_id),
        client_id=str(body.client_id),
        duration_minutes=body.duration_minutes,
        service_code=service_code,
        supervising_only=body.supervising_only,
        time_zone=body.time_zone,
        window={"start_time": iso_utc(max(lower, now)), "end_time": iso_utc(upper)},
        limit=body.limit,
    )
