"""The travel-time rule of a booking (docs/BOOKING.md "Travel time"): each occurrence against the
therapist's previous and next session or hold, under the organization's `travel_policy`.

The computation is `calendar/travel.py`; this module picks the neighbours and phrases the problems.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.booking.errors import InsufficientTravelTime
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Busy
from therapy_scheduler.booking.rules.checks import Problem
from therapy_scheduler.calendar.places import travel_applies, travel_rules_for
from therapy_scheduler.calendar.travel import (
    MAX_TRAVEL_MINUTES,
    Place,
    TravelRules,
    Visit,
    short_gap,
)
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.kit.time import iso_utc


def busy_margin(settings: OrganizationSettings) -> timedelta:
    """How far around a booking its busy time is read: the flat break, or the longest travel time
    when travel is checked."""
    travel = MAX_TRAVEL_MINUTES if travel_applies(settings) else 0
    return timedelta(minutes=max(settings.buffer_minutes, travel))


def visits_of(therapist_id: uuid.UUID, busy: list[Busy]) -> list[Visit]:
    """The therapist's sessions and holds as visits to places, in start order."""
    return sorted(
        (
            Visit(b.start, b.end, Place(b.location_id, b.location_type))
            for b in busy
            if b.therapist_id == therapist_id
        ),
        key=lambda v: (v.start, v.end),
    )


def neighbours(start_end: Visit, visits: list[Visit]) -> list[Visit]:
    """The visit that ends last at or before `start_end` starts, and the one that starts first at or
    after it ends (consecutive visits: overlaps are other rules' conflicts)."""
    before = [v for v in visits if v.end <= start_end.start]
    after = [v for v in visits if v.start >= start_end.end]
    out: list[Visit] = []
    if before:
        out.append(max(before, key=lambda v: v.end))
    if after:
        out.append(min(after, key=lambda v: v.start))
    return out


def travel_problems(
    occurrences: list[Occurrence],
    visits: list[Visit],
    rules: TravelRules,
    *,
    place: Place,
    buffer_minutes: int,
    named_in: ZoneInfo,
) -> list[Problem]:
    """Occurrences closer to the therapist's previous or next visit than the travel time between the
    two places (when it is longer than the flat break), one problem per occurrence."""
    out: list[Problem] = []
    for index, o in enumerate(occurrences):
        mine = Visit(o.start, o.end, place)
        for other in neighbours(mine, visits):
            found = short_gap(mine, other, rules, buffer_minutes)
            if found is None:
                continue
            direction = "to" if found.before is mine else "from"
            out.append(
                Problem(
                    InsufficientTravelTime,
                    f"The occurrence on {o.label(named_in)} leaves {int(found.gap_minutes)} "
                    f"minutes to travel {direction} the therapist's session at another location; "
                    f"the trip takes {found.travel_minutes}",
                    index,
                    {
                        "travel_minutes": found.travel_minutes,
                        "gap_minutes": int(found.gap_minutes),
                        "conflict": {
                            "start_time": iso_utc(other.start),
                            "end_time": iso_utc(other.end),
                        },
                        "requested": o.as_json(),
                    },
                )
            )
            break
    return out


async def check_travel(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    settings: OrganizationSettings,
    therapist_id: uuid.UUID,
    occurrences: list[Occurrence],
    busy: list[Busy],
    place: Place,
    named_in: ZoneInfo,
) -> list[Problem]:
    """The travel problems of a booking (none under policy `off`). Reads the places only when the
    therapist has a visit elsewhere within the longest travel time of an occurrence, and only when
    two known locations are involved (`travel_rules_for`)."""
    if not travel_applies(settings):
        return []
    visits = visits_of(therapist_id, busy)
    reach = timedelta(minutes=MAX_TRAVEL_MINUTES)
    nearby = [
        v
        for v in visits
        if not v.place.same_as(place)
        and any(v.start < o.end + reach and o.start - reach < v.end for o in occurrences)
    ]
    if not nearby:
        return []
    rules = await travel_rules_for(
        conn,
        organization_id=organization_id,
        settings=settings,
        pairs=[(place, v.place) for v in nearby],
    )
    return travel_problems(
        occurrences,
        visits,
        rules,
        place=place,
        buffer_minutes=settings.buffer_minutes,
        named_in=named_in,
    )
