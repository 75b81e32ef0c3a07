"""Weekly-cap conflicts over a range (docs/API.md `weekly_cap_exceeded`): the sessions that take an
authorized service beyond its weekly cap, in the organization's week (calendar/weeks.py). They come
from imported history and from bookings made under the `warn` authorization policy."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from therapy_scheduler.calendar.weeks import over_cap, week_of
from therapy_scheduler.schedule.queries.conflicts import AuthorizationCheck, ConflictSession


def weekly_cap_conflicts(
    sessions: Sequence[ConflictSession],
    rows: Sequence[AuthorizationCheck],
    organization_zone: ZoneInfo,
) -> list[dict[str, Any]]:
    """One conflict per (authorization, service, week) in which sessions of the range go beyond the
    weekly cap, counting every unit-spending session of that week in start order (`rows`: those of
    kind "w" of `authorization_checks`, over whole weeks holding the range's starts); the sessions named are
    those of the range from the one that crossed the cap on."""
    if not rows:
        return []  # no capped service in these weeks (the usual case): no set of ids to build
    shown = {s.id for s in sessions}
    used: dict[tuple[uuid.UUID | None, str, date], list[float]] = defaultdict(lambda: [0, 0])
    over: dict[tuple[uuid.UUID | None, str, date], list[Any]] = defaultdict(list)
    for r in rows:
        key = (r.authorization_id, r.service_code, week_of(r.start_time, organization_zone))
        week = used[key]
        # Rows of kind "w" carry their end and units.
        week[0] += cast(int, r.units)
        week[1] += (cast(datetime, r.end_time) - r.start_time).total_seconds() / 60
        if over_cap(week[0], week[1], r.weekly_cap_units, r.weekly_cap_minutes) and r.id in shown:
            over[key].append(r)
    out: list[dict[str, Any]] = []
    for (authorization_id, code, monday), group in over.items():
        first = group[0]
        cap = (
            f"{first.weekly_cap_units} units"
            if first.weekly_cap_units is not None
            else f"{first.weekly_cap_minutes / 60:g} hours"
        )
        out.append(
            {
                "type": "weekly_cap_exceeded",
                "session_ids": [str(r.id) for r in group],
                "client_id": str(first.client_id),
                "authorization_id": str(authorization_id),
                "service_code": code,
                "week": monday.isoformat(),
                "description": f"These sessions take service {code} beyond its weekly cap of "
                f"{cap} in the week of Monday {monday.isoformat()}",
                "suggested_resolution": "Move a session to another week, or ask the payer for "
                "a higher weekly cap",
            }
        )
    return out
