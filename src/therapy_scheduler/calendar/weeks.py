"""The organization's week, for the weekly caps of authorized services (docs/DECISIONS.md "Weekly
caps"): Monday 00:00 to the next Monday 00:00 local time in the organization's zone (ISO weeks), so
that a Sunday-evening session belongs to the week that is ending even when it is Monday in UTC."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from therapy_scheduler.kit.time import day_bounds


def week_of(instant: datetime, tz: ZoneInfo) -> date:
    """The Monday starting the local week (in `tz`) of `instant`."""
    day = instant.astimezone(tz).date()
    return day - timedelta(days=day.weekday())


def weeks_around(instants: Iterable[datetime], tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC bounds of the whole local weeks (in `tz`) that hold the given instants."""
    mondays = [week_of(i, tz) for i in instants]
    return day_bounds(min(mondays), max(mondays) + timedelta(days=6), tz)


def over_cap(units: float, minutes: float, cap_units: int | None, cap_minutes: int | None) -> bool:
    """Whether a week's units and minutes of a service go beyond its cap (in units or minutes)."""
    return (cap_units is not None and units > cap_units) or (
        cap_minutes is not None and minutes > cap_minutes
    )
