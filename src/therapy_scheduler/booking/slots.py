"""The free-slot engine: where a therapist and a client could both be booked, by the booking rules.

One engine feeds `POST /suggest-alternative-times` and the `alternatives` of booking conflict errors.
A slot `[start, start + duration)` is offered when:

* it lies inside the therapist's working windows (weekly hours plus extra hours minus time off, in the
  therapist's zone);
* it overlaps no non-cancelled session and no active, unexpired hold of the therapist or of the client
  (the session being rescheduled, if any, does not count);
* it keeps the organization's buffer to the therapist's sessions at another location, and the travel
  time to the previous and next one when travel is checked (`booking/rules/travel.py`);
* under authorization policy `block`, an approved authorization of the client covering its date and
  service has enough units left for it (after scheduled and held units);
* it starts after `now`, on a multiple of `step_minutes` of the wall clock in `align_zone` (local
  quarter hours, also across DST changes).

All data is read up front in a constant number of queries (calendars 3, busy 4, authorizations 3, plus
1 for a rescheduled session, 2 for travel when it is checked); everything after that is pure and
deterministic.
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
from therapy_scheduler.booking.rules.apply import without_session
from therapy_scheduler.booking.rules.checks import plan_units
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
    unit_balances,
)
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


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    authorization_id: uuid.UUID | None
    units: int


@dataclass
class World:
    """Everything the engine needs, loaded once."""

    calendar: TherapistCalendar | None
    busy: list[Busy]
    coverages: list[Coverage]
    balances: dict[UnitKey, UnitBalance]
    travel: TravelRules | None = None


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
    busy = await queries.busy_between(
        conn,
        therapist_id=req.therapist_id,
        client_id=req.client_id,
        lower=lower - margin,
        upper=upper + margin,
        now=now,
        exclude_session_id=req.exclude_session_id,
    )
    coverages = await queries.approved_authorizations(
        conn,
        client_id=req.client_id,
        service_code=req.service_code,
        first_day=(lower - timedelta(days=1)).date(),
        last_day=(upper + timedelta(days=1)).date(),
    )
    balances = await unit_balances(conn, [c.authorization_id for c in coverages], now)
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
    return World(calendars.get(req.therapist_id), busy, coverages, balances, travel)


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
    blocked = [(b.start, b.end) for b in world.busy]
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
            near = [b for b in mine if b.end > start - reach and b.start < end + reach]
            near_visits = visits_of(req.therapist_id, near) if world.travel is not None else []
            cursor = aligned(max(start, earliest), align_zone)
            while cursor + req.duration <= end:
                if (
                    cursor not in seen
                    and not _too_close(cursor, cursor + req.duration, near, buffer, req)
                    and not _too_far(cursor, cursor + req.duration, near_visits, world.travel, req)
                ):
                    slot = _with_units(world, req, cursor, unit_minutes)
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


def _with_units(world: World, req: SlotRequest, start: datetime, unit_minutes: int) -> Slot | None:
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
    if problems and req.check_units:
        return None
    return Slot(occurrence.start, occurrence.end, plans[0].authorization_id, plans[0].units)


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


def earliest(slots: Iterator[Slot], limit: int) -> list[Slot]:
    """The first `limit` slots in time, no two overlapping (distinct choices)."""
    chosen: list[Slot] = []
    for slot in slots:
        if chosen and slot.start < chosen[-1].end:
            continue
        chosen.append(slot)
        if len(chosen) == limit:
            break
    return chosen


def closest(slots: Iterator[Slot], around: datetime, limit: int) -> list[Slot]:
    """The `limit` slots closest to `around` (ties: the earlier), no two overlapping, in time order."""
    ranked = sorted(slots, key=lambda s: (abs((s.start - around).total_seconds()), s.start))
    chosen: list[Slot] = []
    for slot in ranked:
        if all(slot.end <= other.start or other.end <= slot.start for other in chosen):
            chosen.append(slot)
            if len(chosen) == limit:
                break
    return sorted(chosen, key=lambda s: s.start)
