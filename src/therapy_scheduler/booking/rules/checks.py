"""The rules a hold must pass (docs/BOOKING.md), as pure functions over data loaded under the booking locks.

Each check returns `Problem`s in occurrence order; the hold service decides, per organization policy
(`block|warn|off`), whether a problem is an error or a warning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from therapy_scheduler.booking.errors import (
    SLOT_CONFLICTS,
    AuthorizationExhausted,
    AuthorizationMissing,
    InsufficientBreak,
    OutsideAvailability,
)
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Busy, Coverage
from therapy_scheduler.calendar.availability import TherapistCalendar
from therapy_scheduler.calendar.travel import Place, same_place
from therapy_scheduler.calendar.units import UnitBalance, UnitKey, session_units
from therapy_scheduler.errors import AppError
from therapy_scheduler.kit.intervals import merge
from therapy_scheduler.kit.time import iso_utc


@dataclass(frozen=True)
class Problem:
    error: type[AppError]
    message: str
    occurrence_index: int
    details: dict[str, Any] = field(default_factory=dict)
    # Details shown only to callers who may see authorization data.
    private_details: dict[str, Any] = field(default_factory=dict)

    def warning(self) -> dict[str, Any]:
        return {
            "code": self.error.code,
            "message": self.message,
            "occurrence_index": self.occurrence_index,
            **{k: v for k, v in self.details.items() if k == "reason"},
        }


def _range(start: datetime, end: datetime) -> dict[str, str]:
    return {"start_time": iso_utc(start), "end_time": iso_utc(end)}


def availability_problems(
    occurrences: list[Occurrence],
    calendar: TherapistCalendar,
    busy: list[Busy],
    *,
    buffer_minutes: int,
    location_id: uuid.UUID | None,
    location_type: str | None,
    named_in: ZoneInfo,
) -> list[Problem]:
    """Outside working hours / during time off, and too little travel time between places. Messages
    name each occurrence by its local date and time in `named_in` (the request's zone)."""
    out: list[Problem] = []
    tz = calendar.zone
    for index, o in enumerate(occurrences):
        days = {
            o.start.astimezone(tz).date(),
            (o.end - timedelta(microseconds=1)).astimezone(tz).date(),
        }
        windows = merge(w for day in sorted(days) for w in calendar.windows(day))
        if not any(s <= o.start and o.end <= e for s, e in windows):
            reason = "time_off" if calendar.time_off_covers(o.start, o.end) else "outside_hours"
            out.append(
                Problem(
                    OutsideAvailability,
                    f"The occurrence on {o.label(named_in)} is during the therapist's time off"
                    if reason == "time_off"
                    else f"The occurrence on {o.label(named_in)} is outside the therapist's "
                    "working hours",
                    index,
                    {"reason": reason, "requested": _range(o.start, o.end)},
                )
            )
            continue
        if buffer_minutes <= 0:
            continue
        gap = timedelta(minutes=buffer_minutes)
        for b in busy:
            if b.therapist_id != calendar.therapist_id:
                continue
            if b.start < o.end and o.start < b.end:
                continue  # an overlap is a conflict, reported by the conflict check
            near = o.start - gap < b.end <= o.start or o.end <= b.start < o.end + gap
            if near and not same_place(b, Place(location_id, location_type)):
                out.append(
                    Problem(
                        InsufficientBreak,
                        f"The occurrence on {o.label(named_in)} leaves less than {buffer_minutes} "
                        "minutes to travel from or to the therapist's session at another location",
                        index,
                        {
                            "buffer_minutes": buffer_minutes,
                            "conflict": _range(b.start, b.end),
                            "requested": _range(o.start, o.end),
                        },
                    )
                )
                break
    return out


def slot_conflicts(
    occurrences: list[Occurrence],
    busy: list[Busy],
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    named_in: ZoneInfo,
) -> list[Problem]:
    """Per occurrence, each of the four conflicts (in the order of `SLOT_CONFLICTS`) it has with a
    session or active hold of the therapist or the client: the first such overlap of each kind."""
    out: list[Problem] = []
    for index, o in enumerate(occurrences):
        overlapping = [b for b in busy if b.start < o.end and o.start < b.end]
        for who, kind in SLOT_CONFLICTS:
            person = therapist_id if who == "therapist" else client_id
            for b in overlapping:
                mine = b.therapist_id if who == "therapist" else b.client_id
                if b.kind == kind and mine == person:
                    what = "session" if kind == "session" else "held slot"
                    out.append(
                        Problem(
                            SLOT_CONFLICTS[(who, kind)],
                            f"The occurrence on {o.label(named_in)} overlaps another {what} of "
                            f"the {who}",
                            index,
                            {
                                "conflict": _range(b.start, b.end),
                                "requested": _range(o.start, o.end),
                            },
                        )
                    )
                    break
    return out


@dataclass(frozen=True)
class UnitPlan:
    """What one occurrence will spend: the authorization (if any) and its units."""

    authorization_id: uuid.UUID | None
    units: int


def plan_units(
    occurrences: list[Occurrence],
    *,
    service_code: str,
    coverages: list[Coverage],
    balances: dict[UnitKey, UnitBalance],
    organization_zone: ZoneInfo,
    default_unit_minutes: int,
    named_in: ZoneInfo,
) -> tuple[list[UnitPlan], list[Problem]]:
    """Assign each occurrence to an approved authorization covering its date (in the organization's
    zone) with enough units left after what is scheduled, held, and planned earlier in this request.
    Messages name an occurrence by its local date and time in `named_in` (the request's zone)."""
    remaining = {
        c.authorization_id: balances.get((c.authorization_id, service_code)) for c in coverages
    }
    left = {k: (v.remaining if v else 0) for k, v in remaining.items()}
    plans: list[UnitPlan] = []
    problems: list[Problem] = []
    for index, o in enumerate(occurrences):
        day: date = o.start.astimezone(organization_zone).date()
        covering = [c for c in coverages if c.start_date <= day <= c.end_date]
        if not covering:
            units = session_units(o.minutes, default_unit_minutes)
            plans.append(UnitPlan(None, units))
            problems.append(
                Problem(
                    AuthorizationMissing,
                    f"No approved authorization of the client covers service {service_code} "
                    f"for the occurrence on {o.label(named_in)}",
                    index,
                    {"service_code": service_code, "date": day.isoformat()},
                )
            )
            continue
        chosen = next(
            (
                c
                for c in covering
                if left[c.authorization_id] >= session_units(o.minutes, c.unit_minutes)
            ),
            None,
        )
        if chosen is None:
            first = covering[0]
            units = session_units(o.minutes, first.unit_minutes)
            problems.append(
                Problem(
                    AuthorizationExhausted,
                    f"Not enough authorized units of service {service_code} left for the "
                    f"occurrence on {o.label(named_in)}",
                    index,
                    {"service_code": service_code, "date": day.isoformat()},
                    {
                        "authorization_id": str(first.authorization_id),
                        "units_required": units,
                        "units_remaining": left[first.authorization_id],
                    },
                )
            )
            chosen = first
        units = session_units(o.minutes, chosen.unit_minutes)
        left[chosen.authorization_id] -= units
        plans.append(UnitPlan(chosen.authorization_id, units))
    return plans, problems
