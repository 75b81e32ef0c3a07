"""Time rules of the whole service.

* Instants are timezone-aware UTC datetimes. Ranges are half-open ``[start, end)``: a session that ends at
  10:00 and one that starts at 10:00 do not overlap.
* Calendar logic happens in an IANA zone with ``zoneinfo``. A wall-clock time that does not exist (the
  spring-forward gap) is an error; an ambiguous one (the fall-back hour) means its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from therapy_scheduler.errors import AppError

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "UTC",
    "NonexistentLocalTime",
    "check_supported",
    "day_bounds",
    "iso_utc",
    "overlaps",
    "parse_instant",
    "resolve_local",
    "utcnow",
    "zone",
]


# Every date and wall-clock time a client sends must fall on a day in these years. Arithmetic on such
# values (the day after, a zone's offset, 200 monthly recurrences, a 366-day range) then stays far
# inside what Python's datetime (years 1-9999) and the databases can represent; before this bound,
# "9999-12-31T23:00" in New York overflowed into a 500. Checked on the value as given (its own date,
# before any conversion), so the message names what the client wrote.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2199, 12, 31)


def check_supported(value: date) -> None:
    """Raise ValueError unless `value` (a date, or a datetime's own date) lies in the supported years."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE} and {LATEST_DATE}")


class NonexistentLocalTime(AppError):
    status = 400
    code = "NONEXISTENT_LOCAL_TIME"


_KNOWN_ZONES: frozenset[str] | None = None


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; anything else (including fixed offsets like "+05:00") is refused."""
    global _KNOWN_ZONES
    if _KNOWN_ZONES is None:
        _KNOWN_ZONES = frozenset(available_timezones())
    if name not in _KNOWN_ZONES:
        raise ValueError(f'unknown time zone "{name}"')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - filtered above
        raise ValueError(f'unknown time zone "{name}"') from exc


def utcnow() -> datetime:
    return datetime.now(UTC)


def resolve_local(naive: datetime, tz: tzinfo) -> datetime:
    """Attach `tz` to a wall-clock time and return the UTC instant.

    Raises NonexistentLocalTime in a spring-forward gap; picks the first occurrence (fold=0) in a
    fall-back overlap.
    """
    if naive.tzinfo is not None:
        raise ValueError("resolve_local expects a naive wall-clock time")
    first = naive.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    # A wall time that does not survive the round trip lies in a gap.
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        raise NonexistentLocalTime(
            f"{naive.isoformat()} does not exist in {tz} (daylight-saving gap)",
            details={"local_time": naive.isoformat(), "time_zone": str(tz)},
        )
    return instant


def resolve_local_lenient(naive: datetime, tz: tzinfo) -> datetime:
    """Like resolve_local, but a time in a gap moves forward by the gap (09:30 → 10:30 on spring day).

    Used for working-hour windows, where a boundary inside a gap means "as soon as the clock allows".
    """
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def parse_instant(value: str, tz: tzinfo | None) -> datetime:
    """An ISO 8601 instant with an offset, or a local time read in `tz`; returned in UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f'"{value}" is not an ISO 8601 date-time') from exc
    check_supported(parsed)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if tz is None:
        raise ValueError(f'"{value}" has no UTC offset and no time_zone was given')
    return resolve_local(parsed, tz)


def day_bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting `first` and local midnight after `last` (inclusive days).

    As `resolve_local_lenient` of each midnight (a midnight in a gap moves forward by the gap), the
    aware midnight made in one step: `replace` with keywords cost more than the zone's arithmetic."""
    start = datetime.combine(first, _MIDNIGHT, tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), _MIDNIGHT, tz).astimezone(UTC)
    return start, end


_MIDNIGHT = time()


def days(first: date, last: date) -> Iterator[date]:
    current = first
    while current <= last:
        yield current
        current += timedelta(days=1)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open ranges overlap when each starts before the other ends."""
    return a_start < b_end and b_start < a_end


def iso_utc(instant: datetime) -> str:
    """`2026-03-09T14:00:00Z` (seconds precision; sub-second parts are kept when present)."""
    if instant.tzinfo is not UTC:
        instant = instant.astimezone(UTC)
    return instant.isoformat()[:-6] + "Z"  # drop "+00:00"
