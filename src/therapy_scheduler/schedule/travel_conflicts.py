"""Consecutive sessions of a therapist at different places with less than the travel time between them
(docs/API.md conflict `insufficient_travel_time`, docs/BOOKING.md "Travel time"). The computation is
`calendar/travel.py`, shared with the hold checks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.places import travel_applies, travel_rules_for
from therapy_scheduler.calendar.travel import Place, Visit, same_place, short_gap
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.schedule.queries.conflicts import ConflictSession


@dataclass(frozen=True)
class TravelCheck:
    """Whose travel rules apply: the organization and its settings."""

    organization_id: uuid.UUID
    settings: OrganizationSettings

    @classmethod
    def of(cls, organization_id: uuid.UUID, settings: OrganizationSettings) -> TravelCheck | None:
        """None under `travel_policy: off` (no travel conflicts are reported)."""
        return cls(organization_id, settings) if travel_applies(settings) else None


# A pair of consecutive sessions of one therapist at different places: therapist, before, after.
ClosePair: TypeAlias = tuple[uuid.UUID, ConflictSession, ConflictSession]


def close_pairs(sessions: Sequence[ConflictSession], within: timedelta) -> list[ClosePair]:
    """Consecutive sessions of each therapist at different places with less than `within` from the
    end of one to the start of the next (or overlapping): the only pairs the break and travel rules
    can object to. `sessions` are ordered by start, then id (so is each therapist's share);
    therapists come in order of their first session."""
    by_therapist: dict[uuid.UUID, list[ConflictSession]] = defaultdict(list)
    for s in sessions:
        by_therapist[s.therapist_id].append(s)
    out: list[ClosePair] = []
    for therapist_id, rows in by_therapist.items():
        out += [
            (therapist_id, a, b)
            for a, b in pairwise(rows)
            if b.start_time - a.end_time < within and not same_place(a, b)
        ]
    return out


def _place(s: ConflictSession) -> Place:
    return Place(s.location_id, s.location_type)


async def travel_conflicts(
    conn: AsyncConnection, close: list[ClosePair], check: TravelCheck
) -> list[dict[str, Any]]:
    """One conflict per pair of consecutive sessions of a therapist too close for the trip between
    their places (when the trip is longer than the flat `buffer_minutes`). `close`: the pairs of
    `close_pairs` within at least `MAX_TRAVEL_MINUTES`."""
    pairs = [p for p in close if p[1].end_time <= p[2].start_time]
    if not pairs:
        return []
    rules = await travel_rules_for(
        conn,
        organization_id=check.organization_id,
        settings=check.settings,
        pairs=[(a, b) for _, a, b in pairs],
    )
    buffer = check.settings.buffer_minutes
    if not rules.may_exceed(buffer):
        return []
    out: list[dict[str, Any]] = []
    # Travel minutes per pair of places (few places, many pairs).
    minutes: dict[tuple[Any, ...], int] = {}
    for therapist_id, a, b in pairs:
        key = (a.location_id, a.location_type, b.location_id, b.location_type)
        travel = minutes.get(key)
        if travel is None:
            travel = minutes[key] = rules.minutes(_place(a), _place(b))
        if travel <= buffer or b.start_time - a.end_time >= timedelta(minutes=travel):
            continue
        found = short_gap(
            Visit(a.start_time, a.end_time, _place(a)),
            Visit(b.start_time, b.end_time, _place(b)),
            rules,
            buffer,
        )
        if found is None:
            continue
        out.append(
            {
                "type": "insufficient_travel_time",
                "session_ids": [str(a.id), str(b.id)],
                "therapist_id": str(therapist_id),
                "description": f"Only {int(found.gap_minutes)} minutes between sessions at "
                f"different locations; the trip takes {found.travel_minutes}",
                "suggested_resolution": "Move one of the sessions to leave travel time",
                "travel_minutes": found.travel_minutes,
                "gap_minutes": int(found.gap_minutes),
            }
        )
    return out
