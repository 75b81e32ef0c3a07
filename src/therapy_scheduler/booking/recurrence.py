"""RFC 5545 recurrence rules, expanded in local wall-clock time.

The rule runs on *naive local* datetimes in the booking's zone, so a weekly 09:00 session stays at 09:00
local across daylight-saving changes (its UTC instant moves by the shift). Only what clinics need is
accepted: FREQ DAILY/WEEKLY/MONTHLY, INTERVAL, BYDAY (with ordinals like ``2TU`` for MONTHLY),
BYMONTHDAY, and COUNT or UNTIL (one of them is required: every hold is finite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any, cast
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrule, weekday

from therapy_scheduler.errors import LimitExceeded, ValidationFailed
from therapy_scheduler.kit.time import LATEST_DATE, check_supported

MAX_OCCURRENCES = 200
_FREQS = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY}
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_DATE = re.compile(r"^\d{8}$")
_UNTIL_TIME = re.compile(r"^(\d{8})T(\d{6})(Z?)$")


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"recurrence.rrule: {message}",
        details={"fields": [{"field": "recurrence.rrule", "message": message}]},
    )


@dataclass(frozen=True)
class Rule:
    """A parsed, validated RRULE (the subset we accept)."""

    freq: int
    interval: int
    count: int | None
    until: date | datetime | None  # a date, or an instant in UTC
    byweekday: tuple[weekday, ...]
    bymonthday: tuple[int, ...]


def parse_rule(text: str) -> Rule:
    """Parse `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12` (an optional `RRULE:` prefix is allowed)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise _invalid("is empty")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip():
            raise _invalid(f'"{item}" is not NAME=VALUE')
        if name in parts:
            raise _invalid(f"{name} is given twice")
        parts[name] = value.strip().upper()
    unknown = set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"}
    if unknown:
        raise _invalid(f"unsupported part(s): {', '.join(sorted(unknown))}")
    freq_name = parts.get("FREQ")
    if freq_name not in _FREQS:
        raise _invalid("FREQ must be DAILY, WEEKLY or MONTHLY")
    freq = _FREQS[freq_name]
    interval = _int(parts.get("INTERVAL", "1"), "INTERVAL", 1, 366)
    count = _int(parts["COUNT"], "COUNT", 1, MAX_OCCURRENCES) if "COUNT" in parts else None
    until = _until(parts["UNTIL"]) if "UNTIL" in parts else None
    if count is None and until is None:
        raise _invalid("COUNT or UNTIL is required")
    if count is not None and until is not None:
        raise _invalid("COUNT and UNTIL are mutually exclusive")
    if "WKST" in parts and parts["WKST"] not in _DAYS:
        raise _invalid("WKST must be a weekday code")
    byweekday = (
        tuple(_byday(v, freq) for v in parts["BYDAY"].split(",")) if "BYDAY" in parts else ()
    )
    bymonthday: tuple[int, ...] = ()
    if "BYMONTHDAY" in parts:
        if freq != MONTHLY:
            raise _invalid("BYMONTHDAY is only supported with FREQ=MONTHLY")
        bymonthday = tuple(_monthday(v) for v in parts["BYMONTHDAY"].split(","))
    return Rule(freq, interval, count, until, byweekday, bymonthday)


def _int(raw: str, name: str, low: int, high: int) -> int:
    if not raw.isdigit():
        raise _invalid(f"{name} must be a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise _invalid(f"{name} must be between {low} and {high}")
    return value


def _until(raw: str) -> date | datetime:
    value = _until_value(raw)
    try:
        check_supported(value)
    except ValueError as exc:
        raise _invalid(f"UNTIL {exc}") from exc
    return value


def _until_value(raw: str) -> date | datetime:
    if _UNTIL_DATE.match(raw):
        try:
            return datetime.strptime(raw, "%Y%m%d").date()  # noqa: DTZ007 - a calendar date
        except ValueError as exc:
            raise _invalid("UNTIL is not a valid date") from exc
    match = _UNTIL_TIME.match(raw)
    if not match:
        raise _invalid("UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ")
    if not match.group(3):
        raise _invalid("a date-time UNTIL must be in UTC (end with Z)")
    try:
        return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S").replace(
            tzinfo=UTC
        )
    except ValueError as exc:
        raise _invalid("UNTIL is not a valid date-time") from exc


def _byday(raw: str, freq: int) -> weekday:
    match = _BYDAY.match(raw.strip())
    if not match:
        raise _invalid(f'BYDAY value "{raw}" is not a weekday like MO or 2TU')
    day = weekday(_DAYS.index(match.group(2)))
    if match.group(1) is None:
        return day
    nth = int(match.group(1))
    if freq != MONTHLY:
        raise _invalid("ordinal BYDAY values (like 2TU) need FREQ=MONTHLY")
    if nth == 0 or abs(nth) > 5:
        raise _invalid("a BYDAY ordinal must be 1..5 or -5..-1")
    return day(nth)


def _monthday(raw: str) -> int:
    text = raw.strip()
    try:
        value = int(text)
    except ValueError as exc:
        raise _invalid(f'BYMONTHDAY value "{raw}" is not a number') from exc
    if value == 0 or abs(value) > 31:
        raise _invalid("BYMONTHDAY values must be 1..31 or -31..-1")
    return value


def expand_local(
    rule: Rule, dtstart: datetime, tz: ZoneInfo, exdates: Iterable[date] = ()
) -> list[datetime]:
    """Naive local start times of every instance, in order, without the excluded local dates.

    `dtstart` is naive local wall-clock time and must itself be an instance of the rule. At most
    MAX_OCCURRENCES instances (counted before exclusions) are allowed.
    """
    if dtstart.tzinfo is not None:
        raise ValueError("expand_local expects a naive local dtstart")
    until: datetime | None = None
    if isinstance(rule.until, datetime):
        until = rule.until.astimezone(tz).replace(tzinfo=None)
    elif isinstance(rule.until, date):
        until = datetime.combine(rule.until, time.max)
    generator = rrule(
        cast(Any, rule.freq),
        dtstart=dtstart,
        interval=rule.interval,
        count=rule.count,
        until=until,
        byweekday=rule.byweekday or None,
        bymonthday=rule.bymonthday or None,
    )
    instances = list(islice(generator, MAX_OCCURRENCES + 1))
    if len(instances) > MAX_OCCURRENCES:
        raise LimitExceeded(
            f"recurrence produces more than {MAX_OCCURRENCES} occurrences",
            details={"limit": "occurrences", "max": MAX_OCCURRENCES},
        )
    if not instances or instances[0] != dtstart:
        raise _invalid("session.start_time must itself be an instance of the rule (DTSTART)")
    if instances[-1].date() > LATEST_DATE:  # e.g. COUNT=200 with a long INTERVAL
        raise _invalid(f"the instances must end by {LATEST_DATE}")
    skipped = set(exdates)
    kept = [i for i in instances if i.date() not in skipped]
    if not kept:
        raise _invalid("every instance is excluded by exdates")
    return kept
