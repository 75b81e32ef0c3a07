"""The free-slot engine: where a therapist and a client could both be booked, by the booking rules.

One engine feeds `POST /suggest-alternative-times` and the `alternatives` of booking conflict errors.
A slot `[start, start + duration)` is offered when:

* it lies inside the therapist's working windows (weekly hours plus extra hours minus time off, in the
  therapist's zone);
* it overlaps no non-cancelled session and no active, unexpired hold of the therapist or of the client
  (the session being rescheduled, if any, does not count), except the supervision overlaps the
  organization allows (`supervision_pairs`), judged as a hold judges them
  (`booking/rules/supervision.py`): a slot of a supervising code (97155) may lie *within* a client's
  supervised session or hold (97153) of another therapist that no other session or hold overlaps
  then, if the therapist holds a supervising credential; a slot of a supervised code may contain a
  supervision that stands alone; the slot says what it supervises (`supervises`);
* it keeps the organization's buffer to the therapist's sessions at another location, and the travel
  time to the previous and next one when travel is checked (`booking/rules/travel.py`);
* under authorization policy `block`, an approved authorization of the client covering its date and
  service has enough units left for it (after scheduled and held units), and the service's weekly cap,
  if any, holds in the slot's week (the organization's week, `booking/rules/caps.py`);
* it starts after `now`, on a multiple of `step_minutes` of the wall clock in `align_zone` (local
  quarter hours, also across DST changes).

All data is read up front in a constant number of queries (calendars 3, busy 4, authorizations 3, plus
1 for a rescheduled session, 1 for travel when it is checked, 1 for the therapist's credential when
the service code supervises another, 1 for the weeks' spending when a covering authorization has a
weekly cap under policy `block`); everything after that is pure and deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.booking import queries
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Busy, Coverage
from therapy_scheduler.booking.queries.caps import spent_between
from therapy_scheduler.booking.queries.supervision import therapist_credential
from therapy_scheduler.booking.rules.apply import without_session
from therapy_scheduler.booking.rules.caps import (
    WeekSpending,
    capped,
    spending_by_week,
    weekly_cap_problems,
)
from therapy_scheduler.booking.rules.checks import plan_units
from therapy_scheduler.booking.rules.supervision import (
    classify_against,
    may_overlap,
    may_supervise,
)
from therapy_scheduler.booking.rules.travel import neighbours, visits_of
from therapy_scheduler.calendar.availability import TherapistCalendar, load_calendars
from therapy_scheduler.calendar.places import load_travel_rules
from therapy_scheduler.calendar.travel import (
    MAX_TRAVEL_MINUTES,
    Place,
    TravelRules,
    Visit,
    short_gap,
)
from therapy_scheduler.calendar.units import (
    UnitBalance,
    UnitKey,
    default_unit_minutes,
)
from therapy_scheduler.calendar.weeks import weeks_around
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.kit.intervals import subtract
from therapy_scheduler.models import Session

STEP_MINUTES = 15


@dataclass(frozen=True)
class SlotRequest:
    organization_id: uuid.UUID
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    duration: timedelta
    service_code: str
    location_id: uuid.UUID | None
    location_type: str | None
    buffer_minutes: int
    organization_zone: ZoneInfo
    check_units: bool  # authorization policy `block`
    exclude_session_id: uuid.UUID | None = None
    # The organization's settings when travel time is checked (travel_policy not `off`).
    travel: OrganizationSettings | None = None
    # The codes `service_code` supervises (`supervision_pairs`); with `supervising_only`, only
    # slots that supervise one of them are offered.
    supervised_codes: frozenset[str] = frozenset()
    supervising_only: bool = False


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    authorization_id: uuid.UUID | None
    units: int
    # The service code of the client's session or hold this slot supervises (None: ordinary).
    supervises: str | None = None


@dataclass
class World:
    """Everything the engine needs, loaded once."""

    calendar: TherapistCalendar | None
    busy: list[Busy]
    coverages: list[Coverage]
    balances: dict[UnitKey, UnitBalance]
    travel: TravelRules | None = None
    # What the client's sessions and holds spend per capped authorization and week (policy
    # `block` and some covering authorization capped), else None.
    weeks: WeekSpending | None = None
    # Whether the therapist holds a supervising credential (read when the code supervises).
    may_supervise: bool = False


async def load_world(
    conn: AsyncConnection, req: SlotRequest, lower: datetime, upper: datetime, now: datetime
) -> World:
    calendars = await load_calendars(
        conn,
        organization_id=req.organization_id,
        therapist_ids=[req.therapist_id],
        start=lower,
        end=upper,
        now=now,
        with_busy=False,
    )
    margin = _reach(req) + timedelta(days=1)
    around = await queries.surroundings(
        conn,
        therapist_id=req.therapist_id,
        client_id=req.client_id,
        lower=lower - margin,
        upper=upper + margin,
        service_code=req.service_code,
        first_day=(lower - timedelta(days=1)).date(),
        last_day=(upper + timedelta(days=1)).date(),
        now=now,
        exclude_session_id=req.exclude_session_id,
        expired=False,
    )
    busy, coverages, balances = around.busy, around.coverages, around.balances
    if req.exclude_session_id is not None:
        moving = await queries.session_for_change(
            conn, req.exclude_session_id, Session.organization_id == req.organization_id
        )
        if moving is not None and moving.status != "cancelled":
            balances = without_session(balances, moving)
    travel = None
    if req.travel is not None:
        travel = await load_travel_rules(
            conn,
            organization_id=req.organization_id,
            settings=req.travel,
            location_ids=[
                req.location_id,
                *(b.location_id for b in busy if b.therapist_id == req.therapist_id),
            ],
        )
    weeks = None
    capped_ids = sorted(
        {
            c.authorization_id
            for c in coverages
            if capped(balances.get((c.authorization_id, req.service_code)))
        },
        key=str,
    )
    if req.check_units and capped_ids:
        first, last = weeks_around([lower, upper], req.organization_zone)
        spent = await spent_between(
            conn,
            client_id=req.client_id,
            service_code=req.service_code,
            authorization_ids=capped_ids,
            lower=first,
            upper=last,
            now=now,
            exclude_session_id=req.exclude_session_id,
        )
        weeks = spending_by_week(spent, req.organization_zone)
    supervisor = False
    if req.supervised_codes:
        supervisor = may_supervise(await therapist_credential(conn, req.therapist_id))
    return World(
        calendars.get(req.therapist_id), busy, coverages, balances, travel, weeks, supervisor
    )


def _reach(req: SlotRequest) -> timedelta:
    """How far from a slot the therapist's other visits can matter (break and travel)."""
    travel = MAX_TRAVEL_MINUTES if req.travel is not None else 0
    return timedelta(minutes=max(req.buffer_minutes, travel))


def aligned(instant: datetime, tz: ZoneInfo, step_minutes: int = STEP_MINUTES) -> datetime:
    """The first instant at or after `instant` whose wall-clock time in `tz` is on a step boundary."""
    offset = instant.astimezone(tz).utcoffset() or timedelta(0)
    local = instant + offset  # wall clock, as a UTC-labelled instant
    base = local.replace(second=0, microsecond=0)
    if base < local:
        base += timedelta(minutes=1)
    minutes = base.hour * 60 + base.minute
    base += timedelta(minutes=(-minutes) % step_minutes)
    result = base - offset
    # Across an offset change the result may fall before `instant` or off the grid; step again.
    if result < instant or (result.astimezone(tz).minute % step_minutes):
        return aligned(result + timedelta(minutes=1), tz, step_minutes)
    return result


def free_slots(
    world: World,
    req: SlotRequest,
    *,
    lower: datetime,
    upper: datetime,
    now: datetime,
    align_zone: ZoneInfo,
) -> Iterator[Slot]:
    """Every free slot starting in `[lower, upper)` (ending by `upper`), in start order."""
    calendar = world.calendar
    if calendar is None:
        return
    earliest = max(lower, now + timedelta(minutes=1))
    if earliest >= upper:
        return
    tz = calendar.zone
    overlappable = {b for b in world.busy if _may_overlap(b, req)}
    blocked = [(b.start, b.end) for b in world.busy if b not in overlappable]
    mine = [b for b in world.busy if b.therapist_id == req.therapist_id]
    buffer = timedelta(minutes=req.buffer_minutes)
    reach = _reach(req)
    unit_minutes = default_unit_minutes(req.service_code)
    day = earliest.astimezone(tz).date()
    last_day = upper.astimezone(tz).date()
    seen: set[datetime] = set()
    while day <= last_day:
        if req.check_units and not _may_be_covered(world, day):
            day += timedelta(days=1)
            continue
        for start, end in subtract(calendar.windows(day), blocked):
            end = min(end, upper)
            # The supervision overlaps this window might allow: each slot is then judged as a hold
            # would judge it, against the busy time around the window.
            judged = any(b.start < end and start < b.end for b in overlappable)
            if req.supervising_only and not judged:
                continue
            around = [b for b in world.busy if b.start < end and start < b.end] if judged else []
            near = [b for b in mine if b.end > start - reach and b.start < end + reach]
            near_visits = visits_of(req.therapist_id, near) if world.travel is not None else []
            cursor = aligned(max(start, earliest), align_zone)
            while cursor + req.duration <= end:
                supervises: str | None = None
                allowed = True
                if judged:
                    allowed, supervises = _supervision(world, req, cursor, around)
                if (
                    allowed
                    and cursor not in seen
                    and not _too_close(cursor, cursor + req.duration, near, buffer, req)
                    and not _too_far(cursor, cursor + req.duration, near_visits, world.travel, req)
                ):
                    slot = _with_units(world, req, cursor, unit_minutes, supervises)
                    if slot is not None:
                        seen.add(cursor)
                        yield slot
                cursor = aligned(cursor + timedelta(minutes=STEP_MINUTES), align_zone)
        day += timedelta(days=1)


def _may_be_covered(world: World, day: date) -> bool:
    """Cheap pre-filter under policy `block`: an authorization's dates (organization zone) come
    within a day of this local day. The exact test is made per slot."""
    return any(
        c.start_date - timedelta(days=1) <= day <= c.end_date + timedelta(days=1)
        for c in world.coverages
    )


def _may_overlap(b: Busy, req: SlotRequest) -> bool:
    return may_overlap(
        b,
        therapist_id=req.therapist_id,
        client_id=req.client_id,
        service_code=req.service_code,
        supervised_codes=req.supervised_codes,
    )


def _supervision(
    world: World, req: SlotRequest, start: datetime, around: list[Busy]
) -> tuple[bool, str | None]:
    """Whether a hold of this slot passes the supervision shape, the slot conflicts and the
    supervisor's credential (`booking/rules/supervision.py`), and what it would supervise."""
    found = classify_against(
        [Occurrence(start, start + req.duration)],
        around,
        therapist_id=req.therapist_id,
        client_id=req.client_id,
        service_code=req.service_code,
        supervised_codes=req.supervised_codes,
        named_in=req.organization_zone,  # the messages are not shown: a slot is simply left out
    )
    supervises = found.supervises[0]
    if found.problems or (supervises is not None and not world.may_supervise):
        return False, None
    if req.supervising_only and supervises is None:
        return False, None
    return True, supervises


def _with_units(
    world: World, req: SlotRequest, start: datetime, unit_minutes: int, supervises: str | None
) -> Slot | None:
    occurrence = Occurrence(start, start + req.duration)
    plans, problems = plan_units(
        [occurrence],
        service_code=req.service_code,
        coverages=world.coverages,
        balances=world.balances,
        organization_zone=req.organization_zone,
        default_unit_minutes=unit_minutes,
        named_in=req.organization_zone,  # the messages are not shown: a slot is simply left out
    )
    if req.check_units:
        if problems:
            return None
        if world.weeks is not None and weekly_cap_problems(
            [occurrence],
            plans,
            service_code=req.service_code,
            balances=world.balances,
            spent=world.weeks,
            organization_zone=req.organization_zone,
            named_in=req.organization_zone,
        ):
            return None
    plan = plans[0]
    return Slot(occurrence.start, occurrence.end, plan.authorization_id, plan.units, supervises)


def _too_close(
    start: datetime, end: datetime, mine: list[Busy], buffer: timedelta, req: SlotRequest
) -> bool:
    if buffer <= timedelta(0):
        return False
    for b in mine:
        if not (start - buffer < b.end and b.start < end + buffer):
            continue
        if b.location_id is not None and req.location_id is not None:
            if b.location_id != req.location_id:
                return True
        elif b.location_type != req.location_type:
            return True
    return False


def _too_far(
    start: datetime, end: datetime, visits: list[Visit], rules: TravelRules | None, req: SlotRequest
) -> bool:
    """Less than the travel time to the therapist's previous or next visit (docs/BOOKING.md)."""
    if rules is None or not visits:
        return False
    slot = Visit(start, end, Place(req.location_id, req.location_type))
    return any(
        short_gap(slot, other, rules, req.buffer_minutes) is not None
        for other in neighbours(slot, visits)
    )
