"""Working hours and free slots, computed per day in each therapist's own time zone.

A day's windows are the weekly windows of its weekday, plus `extra` hours, minus time off. Free slots are
the windows minus every non-cancelled session and every active, unexpired hold of the therapist.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, cast, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.kit.intervals import Range, clip, merge, subtract
from therapy_scheduler.kit.time import days, iso_utc, resolve_local_lenient
from therapy_scheduler.models import (
    MAX_SESSION_LENGTH,
    AvailabilityWindow,
    HoldOccurrence,
    Session,
    Therapist,
    TimeOff,
)


@dataclass
class TherapistCalendar:
    """Everything needed to answer "when does this therapist work, and when are they free"."""

    therapist_id: uuid.UUID
    time_zone: str
    weekly: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    extra: list[Range] = field(default_factory=list)
    time_off: list[Range] = field(default_factory=list)
    busy: list[Range] = field(default_factory=list)
    # windows(day) per day, once `weekly`, `extra` and `time_off` are loaded (load_calendars fills
    # them before returning; nothing changes them afterwards). Availability and conflicts both ask.
    _windows: dict[date, list[Range]] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def _busy_merged(self) -> tuple[list[Range], list[datetime]]:
        """`busy` merged once (sorted, disjoint), with the end of each range for bisection. Read
        only after load_calendars has filled `busy`, like `_windows`."""
        merged = merge(self.busy)
        return merged, [end for _, end in merged]

    def day_bounds(self, day: date) -> Range:
        return (
            _local_instant(day, time(), self.time_zone),
            _local_instant(day + timedelta(days=1), time(), self.time_zone),
        )

    def windows(self, day: date) -> list[Range]:
        cached = self._windows.get(day)
        if cached is None:
            cached = self._windows[day] = self._compute_windows(day)
        return list(cached)

    def _compute_windows(self, day: date) -> list[Range]:
        lower, upper = self.day_bounds(day)
        weekly = [
            (_local_instant(day, start, self.time_zone), _local_instant(day, end, self.time_zone))
            for start, end in self.weekly.get(day.weekday(), [])
        ]
        base = merge([*weekly, *clip(self.extra, lower, upper)])
        return subtract(base, clip(self.time_off, lower, upper))

    def free_slots(self, day: date) -> list[Range]:
        windows = self.windows(day)
        if not windows:
            return []
        # Only busy ranges that overlap the day's windows can cut them: bisect to the first one that
        # ends after the first window starts, stop at the first one that starts after the last ends.
        merged, ends = self._busy_merged
        lower, upper = windows[0][0], windows[-1][1]
        holes = []
        for hole in merged[bisect_right(ends, lower) :]:
            if hole[0] >= upper:
                break
            holes.append(hole)
        return subtract(windows, holes)

    def time_off_covers(self, start: datetime, end: datetime) -> bool:
        return any(s < end and start < e for s, e in self.time_off)


@lru_cache(maxsize=16384)
def _local_instant(day: date, at: time, time_zone: str) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `time_zone` (a time in a gap moves forward).
    Cached: the therapists of a zone share a few boundaries (midnight, opening hours) per day, and a
    week of availability asks for each of them many times."""
    return resolve_local_lenient(datetime.combine(day, at), ZoneInfo(time_zone))


def busy_sessions(
    therapist_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> Select[uuid.UUID, datetime, datetime]:
    """The therapists' non-cancelled sessions that make them busy in the calendars of `[start,
    end)`: those overlapping the range widened by a day on each side (see `load_calendars`)."""
    lo, hi = start - _EDGE, end + _EDGE
    return select(Session.therapist_id, Session.start_time, Session.end_time).where(
        Session.therapist_id.in_(therapist_ids),
        Session.status != "cancelled",
        Session.start_time < hi,
        Session.end_time > lo,
        Session.start_time > lo - MAX_SESSION_LENGTH,  # index lower bound (implied)
    )


# Calendars widen their range by a day on each side so that local days at the edges are complete.
_EDGE = timedelta(days=1)


def _windows_and_time_off() -> Any:
    """The therapists' (`ids`) weekly working hours and their time off (and extra hours) that
    overlap `[lo, hi)`, as one UNION ALL; each part's columns the other lacks are typed NULLs."""
    ids: Any = bindparam("ids", expanding=True)
    windows = select(
        AvailabilityWindow.therapist_id,
        AvailabilityWindow.weekday,
        AvailabilityWindow.start_local,
        AvailabilityWindow.end_local,
        cast(null(), TimeOff.kind.type).label("kind"),
        cast(null(), TimeOff.start_time.type).label("start_time"),
        cast(null(), TimeOff.end_time.type).label("end_time"),
    ).where(AvailabilityWindow.therapist_id.in_(ids))
    time_off = select(
        TimeOff.therapist_id,
        cast(null(), AvailabilityWindow.weekday.type),
        cast(null(), AvailabilityWindow.start_local.type),
        cast(null(), AvailabilityWindow.end_local.type),
        TimeOff.kind,
        TimeOff.start_time,
        TimeOff.end_time,
    ).where(
        TimeOff.therapist_id.in_(ids),
        TimeOff.start_time < bindparam("hi"),
        TimeOff.end_time > bindparam("lo"),
    )
    return union_all(windows, time_off)


# Built once (SQLAlchemy reuses its cache key and compiled form).
_WINDOWS_AND_TIME_OFF = _windows_and_time_off()


async def load_calendars(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
    now: datetime,
    with_busy: bool = True,
    time_zones: dict[uuid.UUID, str] | None = None,
    sessions: Sequence[Any] | None = None,
) -> dict[uuid.UUID, TherapistCalendar]:
    """Calendars of the given therapists for `[start, end)`, in a constant number of queries.
    `time_zones`: the zones of exactly these therapists when the caller has already read them (and
    checked that they belong to the organization), which saves reading them again.
    `sessions`: the rows of `busy_sessions` for (at least) these therapists, when the caller has
    already fetched them (rows of other therapists are ignored); fetched here otherwise."""
    if not therapist_ids:
        return {}
    if time_zones is None:
        rows = await conn.execute(
            select(Therapist.id, Therapist.time_zone).where(
                Therapist.organization_id == organization_id, Therapist.id.in_(therapist_ids)
            )
        )
        time_zones = {r.id: r.time_zone for r in rows}
    calendars = {t: TherapistCalendar(t, zone) for t, zone in time_zones.items()}
    ids = list(calendars)
    if not ids:
        return {}
    lo, hi = start - _EDGE, end + _EDGE
    weekly: dict[uuid.UUID, dict[int, list[tuple[time, time]]]] = defaultdict(dict)
    # Working hours and time off in one round trip (`kind` is NULL on the working-hours rows).
    for r in await conn.execute(_WINDOWS_AND_TIME_OFF, {"ids": ids, "lo": lo, "hi": hi}):
        if r.kind is None:
            weekly[r.therapist_id].setdefault(r.weekday, []).append((r.start_local, r.end_local))
            continue
        target = calendars[r.therapist_id]
        kind_list = target.extra if r.kind == "extra" else target.time_off
        kind_list.append((r.start_time, r.end_time))
    for therapist_id, by_day in weekly.items():
        calendars[therapist_id].weekly = by_day
    if with_busy:
        if sessions is None:
            sessions = (await conn.execute(busy_sessions(ids, start, end))).all()
        for busy in sessions:
            calendar = calendars.get(busy.therapist_id)
            if calendar is not None:
                calendar.busy.append((busy.start_time, busy.end_time))
        for held in await conn.execute(
            select(
                HoldOccurrence.therapist_id, HoldOccurrence.start_time, HoldOccurrence.end_time
            ).where(
                HoldOccurrence.therapist_id.in_(ids),
                HoldOccurrence.active.is_(True),
                HoldOccurrence.expires_at > now,
                HoldOccurrence.start_time < hi,
                HoldOccurrence.end_time > lo,
            )
        ):
            calendars[held.therapist_id].busy.append((held.start_time, held.end_time))
    return calendars


def availability_entries(
    calendars: dict[uuid.UUID, TherapistCalendar],
    therapist_order: list[uuid.UUID],
    first: date,
    last: date,
) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    # The same instants recur across windows, free slots and therapists (opening hours, sessions on
    # the hour): each is formatted once per answer.
    texts: dict[datetime, str] = {}

    def time_range(start: datetime, end: datetime) -> dict[str, str]:
        start_text = texts.get(start) or texts.setdefault(start, iso_utc(start))
        end_text = texts.get(end) or texts.setdefault(end, iso_utc(end))
        return {"start_time": start_text, "end_time": end_text}

    for therapist_id in therapist_order:
        calendar = calendars.get(therapist_id)
        if calendar is None:
            continue
        therapist_text = str(therapist_id)
        for day in days(first, last):
            entries.append(
                {
                    "therapist_id": therapist_text,
                    "date": day.isoformat(),
                    "time_zone": calendar.time_zone,
                    "windows": [time_range(s, e) for s, e in calendar.windows(day)],
                    "free_slots": [time_range(s, e) for s, e in calendar.free_slots(day)],
                }
            )
    return entries
