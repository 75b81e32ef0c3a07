"""Turning a hold request into its list of occurrences: explicit instances, an expanded RRULE, or the
session block alone. Pure functions: no database, the clock is a parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from therapy_scheduler.booking.recurrence import expand_local, parse_rule
from therapy_scheduler.booking.schemas import HoldBody, OccurrenceIn
from therapy_scheduler.errors import ValidationFailed
from therapy_scheduler.kit.time import NonexistentLocalTime, iso_utc, parse_instant, resolve_local

MIN_MINUTES = 15
MAX_MINUTES = 480
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    def as_json(self) -> dict[str, str]:
        return {"start_time": iso_utc(self.start), "end_time": iso_utc(self.end)}

    def label(self, tz: ZoneInfo) -> str:
        """How a message names the occurrence to a person: its local start in `tz` (the request's
        zone), e.g. "Mon 18 Jan 2027 at 14:00 (America/New_York)". English names whatever the locale;
        `details.occurrence_index` keeps the zero-based index for programs."""
        local = self.start.astimezone(tz)
        day = f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"
        return f"{day} at {local:%H:%M} ({tz.key})"


def invalid(field: str, message: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", details={"fields": [{"field": field, "message": message}], **extra}
    )


def read_time(value: str, tz: ZoneInfo, field: str) -> datetime:
    """An instant with an offset, or a wall-clock time in `tz` (a time in a DST gap is refused)."""
    try:
        return parse_instant(value, tz)
    except NonexistentLocalTime as exc:
        exc.details = {**exc.details, "field": field}
        raise
    except ValueError as exc:
        raise invalid(field, str(exc)) from exc


def session_block(body: HoldBody, tz: ZoneInfo) -> Occurrence:
    """The session block's range; `duration_minutes` fills in a missing end and must agree with one."""
    start = read_time(body.session.start_time, tz, "session.start_time")
    if body.session.end_time is None:
        if body.duration_minutes is None:
            raise invalid("duration_minutes", "required when session.end_time is absent")
        return Occurrence(start, start + timedelta(minutes=body.duration_minutes))
    end = read_time(body.session.end_time, tz, "session.end_time")
    if body.duration_minutes is not None and end - start != timedelta(
        minutes=body.duration_minutes
    ):
        raise invalid(
            "duration_minutes",
            "does not agree with session.start_time and session.end_time",
        )
    return Occurrence(start, end)


def requested_occurrences(body: HoldBody, tz: ZoneInfo) -> list[Occurrence]:
    """Every occurrence the request asks for, in the order given (explicit) or generated (RRULE)."""
    first = session_block(body, tz)
    duration = first.end - first.start
    if body.occurrences is not None:
        out = [_explicit(o, i, tz, duration) for i, o in enumerate(body.occurrences)]
        if out[0].start != first.start or (
            body.session.end_time is not None and out[0].end != first.end
        ):
            raise invalid(
                "occurrences[0]",
                "must equal the session block's start_time and end_time",
                occurrence_index=0,
            )
        return out
    if body.recurrence is not None:
        rule = parse_rule(body.recurrence.rrule)
        dtstart = first.start.astimezone(tz).replace(tzinfo=None)
        out = []
        for index, local in enumerate(
            expand_local(rule, dtstart, tz, set(body.recurrence.exdates))
        ):
            try:
                start = resolve_local(local, tz)
            except NonexistentLocalTime as exc:
                exc.details = {**exc.details, "occurrence_index": index}
                raise
            out.append(Occurrence(start, start + duration))
        return out
    return [first]


def _explicit(item: OccurrenceIn, index: int, tz: ZoneInfo, duration: timedelta) -> Occurrence:
    field = f"occurrences[{index}]"
    try:
        start = read_time(item.start_time, tz, f"{field}.start_time")
        end = (
            read_time(item.end_time, tz, f"{field}.end_time")
            if item.end_time is not None
            else start + duration
        )
    except (NonexistentLocalTime, ValidationFailed) as exc:
        exc.details = {**exc.details, "occurrence_index": index}
        raise
    return Occurrence(start, end)


def check_ranges(occurrences: list[Occurrence], now: datetime) -> None:
    """Each occurrence: start before end, 15 to 480 minutes, not in the past; no two overlap."""
    for index, o in enumerate(occurrences):
        field = "session" if len(occurrences) == 1 else f"occurrences[{index}]"
        if o.start >= o.end:
            raise invalid(field, "start_time must be before end_time", occurrence_index=index)
        if not MIN_MINUTES <= o.minutes <= MAX_MINUTES:
            raise invalid(
                field,
                f"a session lasts {MIN_MINUTES} to {MAX_MINUTES} minutes",
                occurrence_index=index,
            )
        if o.start <= now:
            raise invalid(field, "start_time is in the past", occurrence_index=index)
    ordered = sorted(range(len(occurrences)), key=lambda i: occurrences[i].start)
    for a, b in pairwise(ordered):
        if occurrences[b].start < occurrences[a].end:
            raise invalid(
                f"occurrences[{b}]",
                f"overlaps occurrences[{a}] of the same request",
                occurrence_index=b,
            )


def parse_given(
    items: list[OccurrenceIn], tz: ZoneInfo, durations: list[timedelta]
) -> list[Occurrence]:
    """Occurrences given back on confirm; a missing end takes the held occurrence's duration."""
    default = durations[0] if durations else timedelta(0)
    return [
        _explicit(o, i, tz, durations[i] if i < len(durations) else default)
        for i, o in enumerate(items)
    ]
