"""The booking rules applied under the booking locks, shared by every way a session comes to occupy a
slot: a hold (new or reschedule) and the reactivation of a cancelled session.

`find_problems` reads working hours, takes the people locks (unless the statement that read the
people took them, or it only reads, for the forecast), then reads the busy time and the
authorizations with their balances in one statement, and collects every problem of every
occurrence: availability/time off/buffer, the four slot conflicts, the authorization units and the
weekly caps, in the order of docs/BOOKING.md, each judged by the organization's policy.
`check_slots` raises `Refused` with the first blocking one (the transaction then rolls back) or
returns the unit plan and the warnings. A new check that returns `Problem`s is added to
`find_problems` and so reaches the holds, the warnings and the forecast alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.errors import AuthorizationMissing, HoldLimitReached
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Coverage
from therapy_scheduler.booking.queries.caps import client_authorizations, spent_between
from therapy_scheduler.booking.rules.caps import capped, weekly_cap_problems
from therapy_scheduler.booking.rules.checks import (
    Problem,
    UnitPlan,
    availability_problems,
    plan_units,
)
from therapy_scheduler.booking.rules.coverage import explain_uncovered
from therapy_scheduler.booking.rules.locks import lock_people, lock_user
from therapy_scheduler.booking.rules.supervision import alone_warning, check_supervision, left_alone
from therapy_scheduler.booking.rules.travel import busy_margin, check_travel
from therapy_scheduler.calendar.availability import TherapistCalendar, load_calendars
from therapy_scheduler.calendar.travel import Place
from therapy_scheduler.calendar.units import (
    UnitBalance,
    default_unit_minutes,
)
from therapy_scheduler.calendar.weeks import weeks_around
from therapy_scheduler.kit.time import iso_utc, utcnow, zone


class Refused(Exception):
    """A check failed inside the booking transaction (which then rolls back)."""

    def __init__(self, problem: Problem, booking: Booking, found: Found | None = None) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.booking = booking
        # Every problem found with it, when the rules ran in full (the forecast of a refused hold).
        self.found = found


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
    # The therapist's working hours and time off around the occurrences when already read (by
    # `require_people`, with the people).
    calendar: TherapistCalendar | None = None
    # The people's locks are held already (taken by the statement of `require_people`).
    locked: bool = False

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


@dataclass(frozen=True)
class Judged:
    """A problem and the organization's policy for it: "block" (the hold is refused) or "warn"."""

    problem: Problem
    policy: str

    @property
    def blocking(self) -> bool:
        return self.policy == "block"


@dataclass(frozen=True)
class Found:
    """Every problem of a booking, in the order of docs/BOOKING.md, each judged by its policy (a
    rule whose policy is "off" is not checked), with the unit plan and what it was made from (the
    forecast shows them: booking/forecast.py)."""

    plans: list[UnitPlan]
    problems: list[Judged]
    now: datetime
    balances: dict[tuple[uuid.UUID, str], UnitBalance]
    coverages: list[Coverage]
    # Per occurrence, the service code it supervises (None: ordinary; rules/supervision.py).
    supervises: list[str | None] = field(default_factory=list)
    # Warnings that are not problems of an occurrence (a supervision left alone by a reschedule).
    notes: list[dict[str, Any]] = field(default_factory=list)


async def check_slots(
    conn: AsyncConnection, principal: Principal, booking: Booking, now: datetime
) -> Checked:
    """Lock the therapist and client, then apply every booking rule: raise `Refused` with the first
    problem that blocks, or return the unit plan and the other problems as warnings."""
    found = await find_problems(conn, principal, booking, now, lock=True)
    blocking = next((j.problem for j in found.problems if j.blocking), None)
    if blocking is not None:
        raise Refused(blocking, booking, found)
    return Checked(
        found.plans,
        [j.problem.warning() for j in found.problems] + found.notes,
        found.now,
        found.supervises,
    )


async def find_problems(
    conn: AsyncConnection, principal: Principal, booking: Booking, now: datetime, *, lock: bool
) -> Found:
    """Every problem of every occurrence, without raising. With `lock`, under the people locks (and
    expired holds of the people are closed first); without, as a read (the forecast).

    What no booking changes (working hours and time off) is read before the people locks, so that
    the locks are held only while reading and writing what bookings change (sessions, holds,
    units): the busy time and the client's authorizations with their balances, in one statement."""
    settings = principal.settings
    occurrences = booking.occurrences
    named_zone = booking.time_zone or booking.therapist_time_zone
    named_in = zone(named_zone) if named_zone else principal.zone
    lower = min(o.start for o in occurrences)
    upper = max(o.end for o in occurrences)
    buffer = busy_margin(settings)
    calendars = None
    if booking.calendar is not None:
        calendars = {booking.therapist_id: booking.calendar}
    elif settings.availability_policy != "off":
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
    if lock:
        if not booking.locked:
            await lock_people(
                conn, therapist_ids=[booking.therapist_id], client_ids=[booking.client_id]
            )
        # Waiting for the locks takes time: judge expiry by the clock as it is now.
        now = max(now, utcnow())
    # Under the locks, in one statement that starts after them: the busy time, the people's expired
    # holds and the client's covering authorizations with their balances. Expired holds that are
    # still active are closed (so that the exclusion constraints, which count active rows, let
    # their slots be taken again) only when there are any: one round trip less.
    around = await queries.surroundings(
        conn,
        therapist_id=booking.therapist_id,
        client_id=booking.client_id,
        lower=lower - buffer,
        upper=upper + buffer,
        service_code=booking.service_code,
        first_day=(lower - timedelta(days=1)).date(),
        last_day=(upper + timedelta(days=1)).date(),
        now=now,
        exclude_session_id=booking.replacing_id,
        expired=lock,
    )
    busy = around.busy
    if around.expired:
        await queries.deactivate_expired_holds(
            conn, therapist_id=booking.therapist_id, client_id=booking.client_id, now=now
        )
    found: list[Judged] = []

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
        found += [Judged(p, settings.availability_policy) for p in problems]

    travel = await check_travel(
        conn,
        organization_id=principal.organization_id,
        settings=settings,
        therapist_id=booking.therapist_id,
        occurrences=occurrences,
        busy=busy,
        place=Place(booking.location_id, booking.location_type),
        named_in=named_in,
    )
    found += [Judged(p, settings.travel_policy) for p in travel]

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
    found += [Judged(p, "block") for p in supervision.problems]
    notes: list[dict[str, Any]] = []
    if booking.replacing is not None:
        alone = await left_alone(conn, session=booking.replacing, now=now, instead=occurrences)
        if alone:
            notes.append(alone_warning(alone))

    coverages, balances = around.coverages, around.balances
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
    if settings.authorization_policy != "off":
        problems = await authorization_problems(
            conn, principal, booking, plans, problems, balances, now, named_in
        )
        found += [Judged(p, settings.authorization_policy) for p in problems]
    return Found(plans, found, now, balances, coverages, supervision.supervises, notes)


async def authorization_problems(
    conn: AsyncConnection,
    principal: Principal,
    booking: Booking,
    plans: list[UnitPlan],
    problems: list[Problem],
    balances: dict[tuple[uuid.UUID, str], UnitBalance],
    now: datetime,
    named_in: ZoneInfo,
) -> list[Problem]:
    """The unit problems of `plan_units` with their reasons (booking/rules/coverage.py), then the
    weekly caps (booking/rules/caps.py), in occurrence order. Each reads only when needed: the
    client's other authorizations when an occurrence is uncovered, the week's spending when a
    planned authorization has a cap."""
    if any(p.error is AuthorizationMissing for p in problems):
        others = await client_authorizations(
            conn, client_id=booking.client_id, service_code=booking.service_code
        )
    else:
        others = []
    problems = explain_uncovered(
        problems,
        booking.occurrences,
        others,
        service_code=booking.service_code,
        named_in=named_in,
    )
    capped_ids = sorted(
        {
            p.authorization_id
            for p in plans
            if p.authorization_id is not None
            and capped(balances.get((p.authorization_id, booking.service_code)))
        },
        key=str,
    )
    if capped_ids:
        lower, upper = weeks_around((o.start for o in booking.occurrences), principal.zone)
        spent = await spent_between(
            conn,
            client_id=booking.client_id,
            service_code=booking.service_code,
            authorization_ids=capped_ids,
            lower=lower,
            upper=upper,
            now=now,
            exclude_session_id=booking.replacing_id,
        )
        problems += weekly_cap_problems(
            booking.occurrences,
            plans,
            service_code=booking.service_code,
            balances=balances,
            spent=spent,
            organization_zone=principal.zone,
            named_in=named_in,
        )
    return sorted(problems, key=lambda p: p.occurrence_index)


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
    people locks of every hold are taken before it: no cycle). The count is read by the
    transaction's last statement, the change counter's bump, which starts after the lock is granted:
    every hold of one user waits for this lock, so it is held for one statement and the COMMIT, not
    two (docs/PERFORMANCE.md, "What limits each figure": booking)."""
    if not await lock_user(conn, principal.user_id):
        return  # SQLite: `check_hold_limit` ran in a transaction that runs alone
    limit = hold_limit(principal)

    def check(active: int, earliest: datetime | None) -> None:
        if active >= limit:
            raise _limit_reached(limit, active, earliest)

    await queries.check_active_holds_last(conn, principal.user_id, now, hold_id, check)


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
