"""Travel time between two places (docs/BOOKING.md, "Travel time"): pure, shared by the hold checks, the
free slots and the schedule's conflicts.

Between two consecutive sessions of one therapist at different places the gap must be at least
`max(buffer_minutes, travel minutes)`. The travel minutes of a pair of places are, first match wins:

1. 0 when either place is telehealth (nobody moves);
2. the admin's entry for the two locations (the matrix, symmetric);
3. from coordinates when both locations have them: great-circle distance ÷ `travel_speed_kmh`,
   rounded up to 5 minutes, plus `travel_margin_minutes`;
4. the organization's default for the pair of location types (`travel_defaults`), else 0.

The result never exceeds `MAX_TRAVEL_MINUTES`, so that a booking reads the busy time around it within a
known margin.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

MAX_TRAVEL_MINUTES = 240
EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)
ROUND_TO_MINUTES = 5


@dataclass(frozen=True)
class Place:
    """Where a session happens: a location (with coordinates if known) or only a location type."""

    location_id: uuid.UUID | None
    location_type: str | None

    def same_as(self, other: Place) -> bool:
        return same_place(self, other)


@dataclass(frozen=True)
class Coordinates:
    latitude: float
    longitude: float


def pair(a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The stored order of a matrix pair (ascending ids)."""
    return (a, b) if a < b else (b, a)


def type_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class TravelRules:
    """The organization's travel settings and what is known of the places involved."""

    speed_kmh: float
    margin_minutes: int
    type_defaults: dict[tuple[str, str], int] = field(default_factory=dict)
    matrix: dict[tuple[uuid.UUID, uuid.UUID], int] = field(default_factory=dict)
    coordinates: dict[uuid.UUID, Coordinates] = field(default_factory=dict)

    def minutes(self, a: Place, b: Place) -> int:
        """Travel minutes between two places (0 for the same place)."""
        if a.same_as(b) or "telehealth" in (a.location_type, b.location_type):
            return 0
        if a.location_id is not None and b.location_id is not None:
            set_by_admin = self.matrix.get(pair(a.location_id, b.location_id))
            if set_by_admin is not None:
                return min(set_by_admin, MAX_TRAVEL_MINUTES)
            here, there = self.coordinates.get(a.location_id), self.coordinates.get(b.location_id)
            if here is not None and there is not None:
                return minutes_by_distance(
                    great_circle_km(here, there), self.speed_kmh, self.margin_minutes
                )
        if a.location_type is None or b.location_type is None:
            return 0
        return min(
            self.type_defaults.get(type_pair(a.location_type, b.location_type), 0),
            MAX_TRAVEL_MINUTES,
        )

    def may_exceed(self, minutes: int) -> bool:
        """Whether some pair of places may need more than `minutes` of travel: not when no matrix
        entry, no two located places and no type default say so."""
        return (
            bool(self.matrix)
            or len(self.coordinates) >= 2
            or any(m > minutes for m in self.type_defaults.values())
        )


class Located(Protocol):
    """Anything with a place's two attributes: a `Place`, a session row."""

    @property
    def location_id(self) -> uuid.UUID | None: ...

    @property
    def location_type(self) -> str | None: ...


def same_place(a: Located, b: Located) -> bool:
    """The rule of the flat break too: two known locations are the same place when they are the
    same location; otherwise places of the same type count as the same place."""
    if a.location_id is not None and b.location_id is not None:
        return a.location_id == b.location_id
    return a.location_type == b.location_type


def decided_by_locations(a: Located, b: Located) -> bool:
    """Whether the matrix or coordinates may decide the travel between these places (two different
    known locations, neither telehealth); otherwise the settings alone do (`TravelRules.minutes`)."""
    return (
        a.location_id is not None
        and b.location_id is not None
        and a.location_id != b.location_id
        and "telehealth" not in (a.location_type, b.location_type)
    )


def great_circle_km(a: Coordinates, b: Coordinates) -> float:
    """Haversine distance on a sphere of the Earth's mean radius."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    d_phi = phi2 - phi1
    d_lambda = math.radians(b.longitude - a.longitude)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def minutes_by_distance(km: float, speed_kmh: float, margin_minutes: int) -> int:
    """Driving minutes rounded up to a multiple of 5, plus the margin; at most MAX_TRAVEL_MINUTES.
    (A tiny tolerance keeps 10.000000001 minutes, a float artefact, at 10.)"""
    driving = km / speed_kmh * 60
    rounded = math.ceil(driving / ROUND_TO_MINUTES - 1e-9) * ROUND_TO_MINUTES
    return min(max(rounded, 0) + margin_minutes, MAX_TRAVEL_MINUTES)


@dataclass(frozen=True)
class Visit:
    """A stretch of time a therapist spends at a place (a session or a held slot)."""

    start: datetime
    end: datetime
    place: Place


@dataclass(frozen=True)
class ShortGap:
    """Two consecutive visits at different places with less than the travel time between them."""

    before: Visit
    after: Visit
    gap_minutes: float
    travel_minutes: int


def short_gap(a: Visit, b: Visit, rules: TravelRules, buffer_minutes: int) -> ShortGap | None:
    """The travel problem between two non-overlapping visits, in either order: only when travel is the
    binding part of the required gap (travel > buffer_minutes); a shorter gap than the flat buffer alone
    is the break rule's problem."""
    before, after = (a, b) if a.end <= b.start else (b, a)
    if after.start < before.end:
        return None  # an overlap is a conflict of its own
    travel = rules.minutes(before.place, after.place)
    if travel <= buffer_minutes:
        return None
    gap = after.start - before.end
    if gap >= timedelta(minutes=travel):
        return None
    return ShortGap(before, after, gap.total_seconds() / 60, travel)


def first_short_gap(
    visit: Visit, others: Iterable[Visit], rules: TravelRules, buffer_minutes: int
) -> ShortGap | None:
    """The first of `others` too close to `visit` (in the order given)."""
    for other in others:
        found = short_gap(visit, other, rules, buffer_minutes)
        if found is not None:
            return found
    return None


def rules_from_settings(
    *,
    speed_kmh: float,
    margin_minutes: int,
    type_defaults: Iterable[tuple[str, str, int]],
    matrix: dict[tuple[uuid.UUID, uuid.UUID], int] | None = None,
    coordinates: dict[uuid.UUID, Coordinates] | None = None,
) -> TravelRules:
    return TravelRules(
        speed_kmh=speed_kmh,
        margin_minutes=margin_minutes,
        type_defaults={type_pair(a, b): m for a, b, m in type_defaults},
        matrix=dict(matrix or {}),
        coordinates=dict(coordinates or {}),
    )
