"""The parties of a booking as a hold names them (docs/BOOKING.md "checks, in this order"): the
therapist and the client (404 unless active and visible), the place, and the session a reschedule
moves. Read in the booking's transaction; `require_people` can take the people's locks with them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import session_scope
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.errors import SessionNotReschedulable
from therapy_scheduler.booking.occurrences import invalid
from therapy_scheduler.booking.rules.locks import people_lock_keys
from therapy_scheduler.booking.rules.states import target
from therapy_scheduler.booking.schemas import HoldBody
from therapy_scheduler.calendar.availability import TherapistCalendar
from therapy_scheduler.errors import Forbidden, NotFound


@dataclass(frozen=True)
class People:
    """What `require_people` read besides the checks: the therapist's time zone and, when asked,
    the caller's holds that still block (for the cap on active holds)."""

    time_zone: str
    active_holds: int = 0
    next_expiry: datetime | None = None
    calendar: TherapistCalendar | None = None
    # The people's locks were taken by the statement that read them (`lock`).
    locked: bool = False


async def require_people(
    conn: AsyncConnection,
    principal: Principal,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    holds_at: datetime | None = None,
    calendar: tuple[datetime, datetime] | None = None,
    lock: bool = False,
) -> People:
    """404 unless the therapist and the client are active and visible (therapist first), in one
    statement; with `holds_at`, the caller's active holds at that instant are read with them, with
    `calendar` the therapist's working hours and time off for that range, with `lock` the people's
    locks are taken by the same statement, before every booking rule (`queries.people`; the
    booking rules then take no other: `Booking.locked`)."""
    found, hours = await queries.people(
        conn,
        principal,
        therapist_id,
        client_id,
        holds_at=holds_at,
        calendar=calendar,
        lock_keys=people_lock_keys([therapist_id], [client_id]) if lock else (),
    )
    if (
        found is None
        or found.therapist_status != "active"
        or found.therapist_archived_at is not None
    ):
        raise NotFound(
            "Therapist not found (or not active)", details={"field": "session.therapist_id"}
        )
    if (
        found.client_id is None
        or found.client_status != "active"
        or found.client_archived_at is not None
    ):
        raise NotFound("Client not found (or not active)", details={"field": "session.client_id"})
    if holds_at is None:
        return People(found.time_zone, locked=lock)
    return People(found.time_zone, int(found.active_holds), found.next_expiry, hours, lock)


async def hold_place(
    conn: AsyncConnection, principal: Principal, body: HoldBody
) -> tuple[uuid.UUID | None, str | None]:
    block = body.session
    if block.location_id is None:
        return None, block.location_type
    place = await queries.location(conn, principal.organization_id, block.location_id)
    if place is None:
        raise NotFound("Location not found", details={"field": "session.location_id"})
    if not place.is_active:
        raise invalid("session.location_id", "the location is not active")
    if block.location_type is not None and block.location_type != place.location_type:
        raise invalid(
            "session.location_type", f'does not match the location\'s type "{place.location_type}"'
        )
    return place.id, place.location_type


async def reschedulable(conn: AsyncConnection, principal: Principal, body: HoldBody) -> Any:
    """The session a reschedule hold will move (checked like a cancel: visible, owned, scheduled)."""
    session_id = body.session.session_id
    if session_id is None:
        return None
    row = await queries.session_for_change(conn, session_id, session_scope(principal))
    if row is None:
        raise NotFound("Session not found", details={"field": "session.session_id"})
    if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
        row.therapist_id != principal.therapist_id
    ):
        raise Forbidden("A therapist may reschedule only their own sessions")
    if target(row.status, "reschedule") is None:
        raise SessionNotReschedulable(
            f"Only scheduled sessions can be rescheduled (this one is {row.status})",
            details={"session_id": str(row.id), "status": row.status},
        )
    if row.therapist_id != body.session.therapist_id or row.client_id != body.session.client_id:
        raise invalid("session.session_id", "a reschedule keeps the session's therapist and client")
    return row
