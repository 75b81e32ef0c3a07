"""The booking rules applied under the booking locks, shared by every way a session comes to occupy a
slot: a hold (new or reschedule) and the reactivation of a cancelled session.

`check_slots` reads working hours and authorizations, takes the people locks, then checks
availability/time off/buffer, the four slot conflicts and the authorization units, in the order of
docs/BOOKING.md and per the organization's policies. It raises `Refused` (the transaction then rolls back) or
returns the unit plan and the warnings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.errors import HoldLimitReached
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.rules.checks import (
    Problem,
    UnitPlan,
    availability_problems,
    plan_units,
)
from therapy_scheduler.booking.rules.locks import lock_people, lock_user
from therapy_scheduler.booking.rules.supervision import alone_warning, check_supervision, left_alone
from therapy_scheduler.calendar.availability import load_calendars
from therapy_scheduler.calendar.units import (
    UnitBalance,
    default_unit_minutes,
    unit_balances,
)
from therapy_scheduler.kit.time import iso_utc, utcnow, zone


class Refused(Exception):
    """A check failed inside the booking transaction (which then rolls back)."""

    def __init__(self, problem: Problem, booking: Booking) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.booking = booking


@dataclass(frozen=True)
class Booking:
    """What is about to occupy time: one therapist and client, their occurrences, service and place.
    `replacing` is the session row this booking replaces (reschedule, reactivation): its own time and
    units do not count against it."""

    therapist_id: uuid.UUID
    client_id: uuid.UUID
    occurrences: list[Occurrence]
    service_code: str
    location_id: uuid.UUID | None
    location_type: str | None
    replacing: Any = None
    # The therapist's time zone when already read (by `require_people`).
    therapist_time_zone: str | None = None
    # The zone the request gave its times in: messages name occurrences in it (default: the
    # therapist's zone, e.g. when a cancelled session is reactivated).
    time_zone: str | None = None

    @property
    def replacing_id(self) -> uuid.UUID | None:
        return self.replacing.id if self.replacing is not None else None


@dataclass(frozen=True)
class Checked:
    plans: list[UnitPlan]
    warnings: list[dict[str, Any]]
    now: datetime
    # Per occurrence, the service code it supervises (None: an ordinary session), from
    # `rules/supervision.py`: stored as `supervises` on the hold occurrence and the session.
    supervises: list[str | None] = field(default_factory=list)


async def check_slots(
    conn: AsyncConnection, principal: Principal, booking: Booking, now: datetime
) -> Checked:
    """Lock the therapist and client, then apply every booking rule (raise `Refused` on a block).

    What no booking changes (working hours and time off, the client's authorizations) is read before
    the people locks, so that the locks are held only while reading and writing what bookings change
    (sessions, holds, units)."""
    settings = principal.settings
    occurrences = booking.occurrences
    named_zone = booking.time_zone or booking.therapist_time_zone
    named_in = zone(named_zone) if named_zone else principal.zone
    lower = min(o.start for o in occurrences)
    upper = max(o.end for o in occurrences)
    buffer = timedelta(minutes=settings.buffer_minutes)
    calendars = None
    if settings.availability_policy != "off":
        calendars = await load_calendars(
            conn,
            organization_id=principal.organization_id,
            therapist_ids=[booking.therapist_id],
            start=lower,
            end=upper,
            now=now,
            with_busy=False,
            time_zones=(
                {booking.therapist_id: booking.therapist_time_zone}
                if booking.therapist_time_zone is not None
                else None
            ),
        )
    coverages = await queries.approved_authorizations(
        conn,
        client_id=booking.client_id,
        service_code=booking.service_code,
        first_day=(lower - timedelta(days=1)).date(),
        last_day=(upper + timedelta(days=1)).date(),
    )

    await lock_people(conn, therapist_ids=[booking.therapist_id], client_ids=[booking.client_id])
    # Waiting for the locks takes time: judge expiry by the clock as it is now.
    now = max(now, utcnow())
    await queries.deactivate_expired_holds(
        conn, therapist_id=booking.therapist_id, client_id=booking.client_id, now=now
    )
    busy = await queries.busy_between(
        conn,
        therapist_id=booking.therapist_id,
        client_id=booking.client_id,
        lower=lower - buffer,
        upper=upper + buffer,
        now=now,
        exclude_session_id=booking.replacing_id,
    )
    warnings: list[dict[str, Any]] = []

    if calendars is not None:
        problems = availability_problems(
            occurrences,
            calendars[booking.therapist_id],
            busy,
            buffer_minutes=settings.buffer_minutes,
            location_id=booking.location_id,
            location_type=booking.location_type,
            named_in=named_in,
        )
        if problems and settings.availability_policy == "block":
            raise Refused(problems[0], booking)
        warnings += [p.warning() for p in problems]

    # The four slot conflicts, with the supervision overlaps the organization allows
    # (docs/BOOKING.md "Supervision overlap").
    supervision = await check_supervision(
        conn,
        occurrences=occurrences,
        busy=busy,
        therapist_id=booking.therapist_id,
        client_id=booking.client_id,
        service_code=booking.service_code,
        settings=settings,
        named_in=named_in,
    )
    if supervision.problem is not None:
        raise Refused(supervision.problem, booking)
    if booking.replacing is not None:
        alone = await left_alone(conn, session=booking.replacing, instead=occurrences)
        if alone:
            warnings.append(alone_warning(alone))

    balances = await unit_balances(conn, [c.authorization_id for c in coverages], now)
    if booking.replacing is not None:
        balances = without_session(balances, booking.replacing)
    plans, problems = plan_units(
        occurrences,
        service_code=booking.service_code,
        coverages=coverages,
        balances=balances,
        organization_zone=principal.zone,
        default_unit_minutes=default_unit_minutes(booking.service_code),
        named_in=named_in,
    )
    if settings.authorization_policy == "block" and problems:
        raise Refused(problems[0], booking)
    if settings.authorization_policy == "warn":
        warnings += [p.warning() for p in problems]
    return Checked(plans, warnings, now, supervision.supervises)


def hold_limit(principal: Principal) -> int:
    """How many active holds this user may have at once (organization settings, by role)."""
    settings = principal.settings
    if principal.can(Capability.BOOK_FOR_ANY_THERAPIST):
        return settings.max_active_holds_staff
    return settings.max_active_holds_therapist


def check_hold_limit(principal: Principal, active: int, earliest: datetime | None) -> None:
    """Refuse a new hold when the user already has their limit of active, unexpired holds (`active`,
    the earliest expiring at `earliest`, read at the start of the hold transaction), so that nobody
    can squat a calendar by holding in a loop. This first check gives the answer in the documented order;
    on SQLite it is also the final one (the write transaction runs alone), on PostgreSQL
    `confirm_hold_limit` repeats it under the user's lock."""
    limit = hold_limit(principal)
    if active >= limit:
        raise _limit_reached(limit, active, earliest)


async def confirm_hold_limit(
    conn: AsyncConnection, principal: Principal, now: datetime, hold_id: uuid.UUID
) -> None:
    """The cap again, under the user's lock, as the last step of the transaction that wrote hold
    `hold_id`: concurrent holds of one user may all pass `check_hold_limit`, but they count here one
    after the other, each seeing the holds of those that committed before it, so they cannot pass
    the cap together. The lock is taken last and held only for this count and the COMMIT (the
    people locks of every hold are taken before it: no cycle)."""
    if not await lock_user(conn, principal.user_id):
        return  # SQLite: `check_hold_limit` ran in a transaction that runs alone
    limit = hold_limit(principal)
    active, earliest = await queries.active_holds_of(conn, principal.user_id, now, but=hold_id)
    if active >= limit:
        raise _limit_reached(limit, active, earliest)


def _limit_reached(limit: int, active: int, earliest: datetime | None) -> HoldLimitReached:
    return HoldLimitReached(
        f"You already have {active} active holds (the limit is {limit}): confirm or release "
        "one, or wait for one to expire",
        details={
            "limit": limit,
            "active_holds": active,
            "next_expiry": iso_utc(earliest) if earliest is not None else None,
        },
    )


def without_session(
    balances: dict[tuple[uuid.UUID, str], UnitBalance], session: Any
) -> dict[tuple[uuid.UUID, str], UnitBalance]:
    """Balances as if this session no longer spent its units (it is being replaced or re-booked)."""
    key = (session.authorization_id, session.service_code)
    if session.authorization_id is None or not session.consumes_units or key not in balances:
        return balances
    current = balances[key]
    return {**balances, key: replace(current, consumed=current.consumed - session.units)}
