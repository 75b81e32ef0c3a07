"""RFC 5545 recurrence rules: the subset the service accepts, read by dateutil, expanded in local
wall-clock time.

One parser for every place a rule is read: a recurring hold (booking) and a series' RRULE in the
calendar feeds. `parse_rule` checks the rule against what clinics need and refuses anything else with a
message for the client (`RuleError`); dateutil's `rrulestr` then reads the accepted parts. Accepted:

* `FREQ` DAILY, WEEKLY or MONTHLY, `INTERVAL` 1..366, `WKST`;
* `BYDAY` (weekday codes; ordinals like `2TU` or `-1FR` only with MONTHLY), `BYMONTHDAY` (MONTHLY);
* exactly one of `COUNT` (1..200) and `UNTIL` (a date `YYYYMMDD`, or a UTC date-time
  `YYYYMMDDTHHMMSSZ`), so that every series is finite.

`local_instances` runs the rule on *naive local* datetimes in the series' zone, so a weekly 09:00
session stays at 09:00 local across daylight-saving changes (its UTC instant moves by the shift).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.parser import isoparse
from dateutil.rrule import rrule, rrulestr

from therapy_scheduler.kit.time import check_supported

MAX_COUNT = 200
MAX_INTERVAL = 366
FREQS = ("DAILY", "WEEKLY", "MONTHLY")
PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"})
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# dateutil derives what a rule leaves open (the weekday of a WEEKLY rule, the day of a MONTHLY one)
# from DTSTART; `parse_rule` reads the rule at this placeholder, `local_instances` at the real one.
_PLACEHOLDER_START = datetime(2000, 1, 3)  # noqa: DTZ001 - naive local wall-clock time


class RuleError(ValueError):
    """A rule outside the accepted subset; the text says why, in words for the client."""


@dataclass(frozen=True)
class Rule:
    """An accepted rule."""

    text: str  # its parts other than UNTIL, normalised: "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12"
    until: date | datetime | None  # a calendar date, or an instant in UTC
    recurrence: rrule  # dateutil's reading of `text`


def parse_rule(text: str) -> Rule:
    """Parse `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12` (an optional `RRULE:` prefix is allowed)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise RuleError("is empty")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip():
            raise RuleError(f'"{item}" is not NAME=VALUE')
        if name in parts:
            raise RuleError(f"{name} is given twice")
        parts[name] = value.strip().upper()
    unknown = set(parts) - PARTS
    if unknown:
        raise RuleError(f"unsupported part(s): {', '.join(sorted(unknown))}")
    freq = parts.get("FREQ")
    if freq not in FREQS:
        raise RuleError("FREQ must be DAILY, WEEKLY or MONTHLY")
    _whole(parts.get("INTERVAL", "1"), "INTERVAL", 1, MAX_INTERVAL)
    if "COUNT" in parts:
        _whole(parts["COUNT"], "COUNT", 1, MAX_COUNT)
    until = _until(parts["UNTIL"]) if "UNTIL" in parts else None
    if "COUNT" not in parts and until is None:
        raise RuleError("COUNT or UNTIL is required")
    if "COUNT" in parts and until is not None:
        raise RuleError("COUNT and UNTIL are mutually exclusive")
    if "WKST" in parts and parts["WKST"] not in DAYS:
        raise RuleError("WKST must be a weekday code")
    if "BYDAY" in parts:
        parts["BYDAY"] = ",".join(_byday(v, freq) for v in parts["BYDAY"].split(","))
    if "BYMONTHDAY" in parts:
        if freq != "MONTHLY":
            raise RuleError("BYMONTHDAY is only supported with FREQ=MONTHLY")
        parts["BYMONTHDAY"] = ",".join(_monthday(v) for v in parts["BYMONTHDAY"].split(","))
    normalised = ";".join(f"{name}={value}" for name, value in parts.items() if name != "UNTIL")
    try:
        recurrence = rrulestr(normalised, dtstart=_PLACEHOLDER_START)
    except (ValueError, TypeError) as exc:  # pragma: no cover - the checks above refuse it first
        raise RuleError("is not a valid recurrence rule") from exc
    assert isinstance(recurrence, rrule)  # one RRULE without EXDATE/RDATE lines
    return Rule(normalised, until, recurrence)


def _whole(raw: str, name: str, low: int, high: int) -> None:
    if not (raw.isascii() and raw.isdigit()):
        raise RuleError(f"{name} must be a whole number")
    if not low <= int(raw) <= high:
        raise RuleError(f"{name} must be between {low} and {high}")


def _until(raw: str) -> date | datetime:
    digits = raw[:8] + raw[9:15]
    if len(raw) == 8 and raw.isascii() and raw.isdigit():
        try:
            day = isoparse(raw).date()
        except ValueError as exc:
            raise RuleError("UNTIL is not a valid date") from exc
        _supported(day)
        return day
    if not (len(raw) in (15, 16) and raw[8] == "T" and digits.isascii() and digits.isdigit()):
        raise RuleError("UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ")
    if len(raw) == 15:
        raise RuleError("a date-time UNTIL must be in UTC (end with Z)")
    if raw[15] != "Z":
        raise RuleError("UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ")
    try:
        instant = isoparse(raw).astimezone(UTC)
    except ValueError as exc:
        raise RuleError("UNTIL is not a valid date-time") from exc
    if instant.hour != int(raw[9:11]):  # ISO's 24:00 (the next midnight) is not an RFC 5545 time
        raise RuleError("UNTIL is not a valid date-time")
    _supported(instant)
    return instant


def _supported(value: date) -> None:
    try:
        check_supported(value)
    except ValueError as exc:
        raise RuleError(f"UNTIL {exc}") from exc


def _byday(raw: str, freq: str) -> str:
    token = raw.strip()
    code, ordinal = token[-2:], token[:-2]
    digits = ordinal[1:] if ordinal[:1] in ("+", "-") else ordinal
    if code not in DAYS or not (
        ordinal == "" or (1 <= len(digits) <= 2 and digits.isascii() and digits.isdigit())
    ):
        raise RuleError(f'BYDAY value "{raw}" is not a weekday like MO or 2TU')
    if ordinal:
        if freq != "MONTHLY":
            raise RuleError("ordinal BYDAY values (like 2TU) need FREQ=MONTHLY")
        if int(ordinal) == 0 or abs(int(ordinal)) > 5:
            raise RuleError("a BYDAY ordinal must be 1..5 or -5..-1")
    return token


def _monthday(raw: str) -> str:
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise RuleError(f'BYMONTHDAY value "{raw}" is not a number') from exc
    if value == 0 or abs(value) > 31:
        raise RuleError("BYMONTHDAY values must be 1..31 or -31..-1")
    return str(value)


def local_until(rule: Rule, tz: ZoneInfo) -> datetime | None:
    """The rule's UNTIL as naive wall-clock time in `tz`: a date UNTIL is the end of that local day."""
    if isinstance(rule.until, datetime):
        return rule.until.astimezone(tz).replace(tzinfo=None)
    if isinstance(rule.until, date):
        return datetime.combine(rule.until, time.max)
    return None


def local_instances(rule: Rule, dtstart: datetime, tz: ZoneInfo, *, limit: int) -> list[datetime]:
    """Naive local start times of the rule from naive local `dtstart`, in order: at most `limit + 1`,
    so that a caller sees a rule that runs past its `limit` without expanding all of it."""
    if dtstart.tzinfo is not None:
        raise ValueError("local_instances expects a naive local dtstart")
    generator = rule.recurrence.replace(dtstart=dtstart, until=local_until(rule, tz))
    return list(islice(generator, limit + 1))
