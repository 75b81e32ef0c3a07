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
from functools import cache, cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    String,
    Time,
    bindparam,
    cast,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra.driver_read import driver_read, in_ids
from therapy_scheduler.kit.intervals import Range, clip, merge, subtract, subtract_sorted
from therapy_scheduler.kit.time import days, iso_utc, resolve_local_lenient
from therapy_scheduler.models import (
    MAX_SESSION_LENGTH,
    AvailabilityWindow,
    HoldOccurrence,
    Session,
    Therapist,
    TimeOff,
)
from therapy_scheduler.models.base import UTCDateTime


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
        pattern = self.weekly.get(day.weekday())
        weekly = _weekly_windows(day, tuple(pattern), self.time_zone) if pattern else ()
        if not self.extra and not self.time_off:
            return list(weekly)  # = subtract(merge(weekly), []): the usual day
        lower, upper = self.day_bounds(day)
        base = merge([*weekly, *clip(self.extra, lower, upper)])
        return subtract(base, clip(self.time_off, lower, upper))

    def free_slots(self, day: date) -> list[Range]:
        windows = self._windows.get(day)
        if windows is None:
            windows = self._windows[day] = self._compute_windows(day)
        if not windows:
            return []
        # Only busy ranges that end after the first window starts can cut the windows: bisect to
        # the first of them; the windows and the merged busy ranges are both sorted and disjoint.
        merged, ends = self._busy_merged
        return subtract_sorted(windows, merged, bisect_right(ends, windows[0][0]))

    def time_off_covers(self, start: datetime, end: datetime) -> bool:
        return any(s < end and start < e for s, e in self.time_off)


@lru_cache(maxsize=4096)
def _weekly_windows(
    day: date, pattern: tuple[tuple[time, time], ...], time_zone: str
) -> tuple[Range, ...]:
    """The weekly windows `pattern` (wall-clock times) on `day` in `time_zone`, merged. Cached:
    the therapists of a zone mostly share a few weekly patterns, so a week of availability for
    many therapists computes each pattern's day once."""
    return tuple(
        merge(
            (_local_instant(day, start, time_zone), _local_instant(day, end, time_zone))
            for start, end in pattern
        )
    )


@lru_cache(maxsize=16384)
def _local_instant(day: date, at: time, time_zone: str) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `time_zone` (a time in a gap moves forward).
    Cached: the therapists of a zone share a few boundaries (midnight, opening hours) per day, and a
    week of availability asks for each of them many times."""
    return resolve_local_lenient(datetime.combine(day, at), ZoneInfo(time_zone))


@cache
def busy_sessions(dialect_name: str) -> Select[uuid.UUID, datetime, datetime]:
    """The therapists' non-cancelled sessions that make them busy in the calendars of a range: those
    overlapping the range widened by a day on each side (see `load_calendars`). Built once per
    dialect (the ids: `in_ids`), bind parameters from `busy_values`: building it for every request
    cost more than its rows."""
    lo, hi = bindparam("busy_lo", type_=UTCDateTime()), bindparam("busy_hi", type_=UTCDateTime())
    return select(Session.therapist_id, Session.start_time, Session.end_time).where(
        in_ids(Session.therapist_id, "busy_ids", dialect_name),
        Session.status != "cancelled",
        Session.start_time < hi,
        Session.end_time > lo,
        # index lower bound (implied)
        Session.start_time > bindparam("busy_floor", type_=UTCDateTime()),
    )


def busy_values(
    therapist_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> dict[str, Any]:
    """The bind parameters of `busy_sessions` for these therapists and the range `[start, end)`."""
    lo = start - _EDGE
    return {
        "busy_ids": list(therapist_ids),
        "busy_lo": lo,
        "busy_hi": end + _EDGE,
        "busy_floor": lo - MAX_SESSION_LENGTH,
    }


# Calendars widen their range by a day on each side so that local days at the edges are complete.
_EDGE = timedelta(days=1)


def _null(type_: Any) -> Any:
    return cast(null(), type_)


@cache
def calendar_statement(
    with_zones: bool, with_holds: bool, dialect_name: str = ""
) -> CompoundSelect[Any]:
    """The calendar rows of `load_calendars` in one statement, built once per variant and dialect
    (bind parameters `organization_id`, `ids` (`in_ids`: one array on "postgresql", for the
    driver; an expanding IN otherwise), `lo`, `hi`, `now`): the therapists' zones
    (`with_zones`), weekly windows, time off and active unexpired holds (`with_holds`), a UNION ALL
    in the columns (`part`, therapist_id, text, weekday, start_local, end_local, start_time,
    end_time). One round trip instead of four (docs/PERFORMANCE.md, "schedule_week"); building the
    statement for every request cost more than the arithmetic on its rows."""
    lo, hi = bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime())
    no_text, no_day = _null(String()), _null(Integer())
    no_local, no_instant = _null(Time()), _null(UTCDateTime())
    parts: list[Select[Any]] = []
    if with_zones:
        parts.append(
            select(
                literal("z").label("part"),
                Therapist.id.label("therapist_id"),
                Therapist.time_zone.label("text"),
                no_day.label("weekday"),
                no_local.label("start_local"),
                no_local.label("end_local"),
                no_instant.label("start_time"),
                no_instant.label("end_time"),
            ).where(
                Therapist.organization_id == bindparam("organization_id"),
                in_ids(Therapist.id, "ids", dialect_name),
            )
        )
    # Named, also when it comes first: the statement is a subquery of the hold's people read.
    parts.append(
        select(
            literal("w").label("part"),
            AvailabilityWindow.therapist_id.label("therapist_id"),
            no_text.label("text"),
            AvailabilityWindow.weekday.label("weekday"),
            AvailabilityWindow.start_local.label("start_local"),
            AvailabilityWindow.end_local.label("end_local"),
            no_instant.label("start_time"),
            no_instant.label("end_time"),
        ).where(in_ids(AvailabilityWindow.therapist_id, "ids", dialect_name))
    )
    parts.append(
        select(
            literal("o"),
            TimeOff.therapist_id,
            TimeOff.kind,
            no_day,
            no_local,
            no_local,
            TimeOff.start_time,
            TimeOff.end_time,
        ).where(
            in_ids(TimeOff.therapist_id, "ids", dialect_name),
            TimeOff.start_time < hi,
            TimeOff.end_time > lo,
        )
    )
    if with_holds:
        parts.append(
            select(
                literal("h"),
                HoldOccurrence.therapist_id,
                no_text,
                no_day,
                no_local,
                no_local,
                HoldOccurrence.start_time,
                HoldOccurrence.end_time,
            ).where(
                in_ids(HoldOccurrence.therapist_id, "ids", dialect_name),
                HoldOccurrence.active.is_(True),
                HoldOccurrence.expires_at > bindparam("now", type_=UTCDateTime()),
                HoldOccurrence.start_time < hi,
                HoldOccurrence.end_time > lo,
            )
        )
    return union_all(*parts)


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
    """Calendars of the given therapists for `[start, end)`, in a constant number of queries (one,
    `calendar_statement`, when the caller brings `sessions`). `time_zones`: the zones of exactly
    these therapists when the caller has already read them (and checked that they belong to the
    organization), which saves reading them. `sessions`: the rows of `busy_sessions` for (at least)
    these therapists, when the caller has already fetched them (rows of other therapists are
    ignored); fetched here otherwise."""
    if not therapist_ids:
        return {}
    ids = list(dict.fromkeys(therapist_ids)) if time_zones is None else list(time_zones)
    if not ids:
        return {}
    values = calendar_values(organization_id, ids, start, end, now)
    dialect = conn.dialect
    # The calendar and busy rows are many and small: read on the driver (infra/driver_read.py).
    rows = await driver_read(
        calendar_statement(time_zones is None, with_busy, dialect.name), dialect
    ).all(conn, values, tuple)
    calendars, held = calendars_from_rows(rows, time_zones)
    if not calendars:
        return {}
    if with_busy:
        if sessions is None:
            sessions = await driver_read(busy_sessions(dialect.name), dialect).all(
                conn, busy_values(list(calendars), start, end)
            )
        for busy in sessions:
            calendar = calendars.get(busy.therapist_id)
            if calendar is not None:
                calendar.busy.append((busy.start_time, busy.end_time))
        for target, hold in held:
            target.busy.append(hold)
    return calendars


def calendar_values(
    organization_id: uuid.UUID, ids: list[uuid.UUID], start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """The bind parameters of `calendar_statement` for these therapists and `[start, end)`."""
    return {
        "organization_id": organization_id,
        "ids": ids,
        "lo": start - _EDGE,
        "hi": end + _EDGE,
        "now": now,
    }


def calendars_from_rows(
    rows: Sequence[Any], time_zones: dict[uuid.UUID, str] | None
) -> tuple[dict[uuid.UUID, TherapistCalendar], list[tuple[TherapistCalendar, Range]]]:
    """The calendars (without their busy time) of the rows of `calendar_statement` (a row whose
    part is NULL is none: an outer join of the statement that found no row), and the active holds
    among the rows. `time_zones`: the therapists' zones, else read from the rows (`with_zones`)."""
    if time_zones is None:
        # Only the therapists of the organization: the other parts' rows of any other id are
        # ignored below.
        time_zones = {row[1]: row[2] for row in rows if row[0] == "z"}
    calendars = {t: TherapistCalendar(t, zone) for t, zone in time_zones.items()}
    held: list[tuple[TherapistCalendar, Range]] = []
    if not calendars:
        return calendars, held
    weekly: dict[uuid.UUID, dict[int, list[tuple[time, time]]]] = defaultdict(dict)
    for part, therapist_id, text, weekday, start_local, end_local, at, until in rows:
        if part is None or part == "z":
            continue
        target = calendars.get(therapist_id)
        if target is None:
            continue
        if part == "w":
            weekly[therapist_id].setdefault(weekday, []).append((start_local, end_local))
        elif part == "o":
            (target.extra if text == "extra" else target.time_off).append((at, until))
        else:
            held.append((target, (at, until)))
    for therapist_id, by_day in weekly.items():
        calendars[therapist_id].weekly = by_day
    return calendars, held


def availability_entries(
    calendars: dict[uuid.UUID, TherapistCalendar],
    therapist_order: list[uuid.UUID],
    first: date,
    last: date,
) -> orjson.Fragment:
    """The availability of the therapists in `therapist_order` (those with a calendar), day by day
    from `first` to `last`: a JSON array of `{therapist_id, date, time_zone, windows, free_slots}`
    (docs/API.md), written out as text, the bytes `orjson.dumps` gives for the same dicts. A week
    of 50 therapists is ≈ 350 entries and ≈ 1,100 time ranges: building them as dicts for orjson
    to walk cost more than the free time itself (docs/PERFORMANCE.md, "schedule_week")."""
    # The same ranges recur across days and therapists (opening hours, sessions on the hour): each
    # is written once per answer.
    texts: dict[Range, bytes] = {}

    def ranges(found: list[Range]) -> bytes:
        out = []
        for r in found:
            text = texts.get(r)
            if text is None:
                text = texts[r] = b'{"start_time":"%s","end_time":"%s"}' % (
                    iso_utc(r[0]).encode(),
                    iso_utc(r[1]).encode(),
                )
            out.append(text)
        return b",".join(out)

    dates = [(day, day.isoformat().encode()) for day in days(first, last)]
    entries: list[bytes] = []
    for therapist_id in therapist_order:
        calendar = calendars.get(therapist_id)
        if calendar is None:
            continue
        head = b'{"therapist_id":"%s","date":"' % str(therapist_id).encode()
        zone = b'","time_zone":%s,"windows":[' % orjson.dumps(calendar.time_zone)
        for day, day_text in dates:
            entries.append(
                b'%s%s%s%s],"free_slots":[%s]}'
                % (
                    head,
                    day_text,
                    zone,
                    ranges(calendar.windows(day)),
                    ranges(calendar.free_slots(day)),
                )
            )
    return orjson.Fragment(b"[%s]" % b",".join(entries))
