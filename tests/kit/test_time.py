"""Time rules (kit/time.py): gaps raise, overlaps take the first occurrence, days in their zone."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_scheduler.kit.time import (
    NonexistentLocalTime,
    day_bounds,
    iso_utc,
    overlaps,
    parse_instant,
    resolve_local,
    resolve_local_lenient,
    zone,
)

NY = ZoneInfo("America/New_York")
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # DST change at midnight
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
]


def test_spring_forward_gap_raises() -> None:
    with pytest.raises(NonexistentLocalTime) as caught:
        resolve_local(datetime(2027, 3, 14, 2, 30), NY)
    assert caught.value.code == "NONEXISTENT_LOCAL_TIME"
    assert caught.value.status == 400
    assert caught.value.details == {
        "local_time": "2027-03-14T02:30:00",
        "time_zone": "America/New_York",
    }
    assert resolve_local(datetime(2027, 3, 14, 1, 59), NY) == datetime(
        2027, 3, 14, 6, 59, tzinfo=UTC
    )
    assert resolve_local(datetime(2027, 3, 14, 3, 0), NY) == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)


def test_fall_back_overlap_takes_the_first_occurrence() -> None:
    # 01:30 happens twice on 2027-11-07: first in EDT (05:30Z), then in EST (06:30Z).
    assert resolve_local(datetime(2027, 11, 7, 1, 30), NY) == datetime(
        2027, 11, 7, 5, 30, tzinfo=UTC
    )


def test_session_after_the_change_is_in_daylight_time() -> None:
    assert resolve_local(datetime(2027, 3, 15, 9, 0), NY) == datetime(
        2027, 3, 15, 13, 0, tzinfo=UTC
    )
    assert resolve_local(datetime(2027, 3, 12, 9, 0), NY) == datetime(
        2027, 3, 12, 14, 0, tzinfo=UTC
    )


def test_resolve_local_refuses_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        resolve_local(datetime(2027, 3, 15, 9, 0, tzinfo=UTC), NY)


def test_lenient_resolution_moves_forward_through_a_gap() -> None:
    assert resolve_local_lenient(datetime(2027, 3, 14, 2, 30), NY) == datetime(
        2027, 3, 14, 7, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("day", "tz", "hours"),
    [
        (date(2027, 3, 14), "America/New_York", 23),
        (date(2027, 11, 7), "America/New_York", 25),
        (date(2027, 3, 15), "America/New_York", 24),
        (date(2027, 3, 28), "Europe/Berlin", 23),
        (date(2027, 4, 4), "Australia/Lord_Howe", 24.5),
        (date(2027, 3, 14), "UTC", 24),
    ],
)
def test_day_lengths(day: date, tz: str, hours: float) -> None:
    start, end = day_bounds(day, day, zone(tz))
    assert (end - start) / timedelta(hours=1) == hours


def test_day_bounds_of_a_new_york_range() -> None:
    assert day_bounds(date(2027, 3, 13), date(2027, 3, 14), NY) == (
        datetime(2027, 3, 13, 5, 0, tzinfo=UTC),
        datetime(2027, 3, 15, 4, 0, tzinfo=UTC),
    )


def test_day_bounds_when_midnight_does_not_exist() -> None:
    # Santiago springs forward at 24:00 on 2027-09-04: 2027-09-05 starts at 01:00 local.
    santiago = zone("America/Santiago")
    start, end = day_bounds(date(2027, 9, 5), date(2027, 9, 5), santiago)
    assert start == datetime(2027, 9, 5, 4, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=23)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-15T13:00:00Z", datetime(2027, 3, 15, 13, 0, tzinfo=UTC)),
        ("2027-03-15T09:00:00-04:00", datetime(2027, 3, 15, 13, 0, tzinfo=UTC)),
        ("2027-03-15T13:00:00.250+00:00", datetime(2027, 3, 15, 13, 0, 0, 250000, tzinfo=UTC)),
        (" 2027-03-15T09:00 ", datetime(2027, 3, 15, 13, 0, tzinfo=UTC)),  # local, New York
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    assert parse_instant(text, NY) == expected


def test_parse_instant_errors() -> None:
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_instant("next tuesday", NY)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_instant("2027-03-15T09:00", None)
    with pytest.raises(NonexistentLocalTime):
        parse_instant("2027-03-14T02:15", NY)


@pytest.mark.parametrize("name", ["Mars/Base", "+05:00", "EST5EDT5", "", "../etc/passwd", "utc"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone(name)


def test_iso_utc() -> None:
    assert iso_utc(datetime(2027, 3, 15, 9, 0, tzinfo=NY)) == "2027-03-15T13:00:00Z"
    assert iso_utc(datetime(2027, 3, 15, 13, 0, 0, 5, tzinfo=UTC)) == "2027-03-15T13:00:00.000005Z"


def test_half_open_ranges() -> None:
    t = [datetime(2027, 3, 15, h, tzinfo=UTC) for h in range(12)]
    assert overlaps(t[1], t[3], t[2], t[4])
    assert not overlaps(t[1], t[2], t[2], t[3])  # back to back
    assert overlaps(t[1], t[5], t[2], t[3])  # containment
    assert not overlaps(t[3], t[4], t[1], t[2])


wall_times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2045, 12, 31))
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2045, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(naive=wall_times, name=st.sampled_from(ZONES))
def test_resolve_local_round_trips_or_raises_in_a_gap(naive: datetime, name: str) -> None:
    tz = zone(name)
    try:
        instant = resolve_local(naive, tz)
    except NonexistentLocalTime:
        # In a gap: the wall time does not come back from either reading.
        for fold in (0, 1):
            back = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC).astimezone(tz)
            assert back.replace(tzinfo=None) != naive
        return
    assert instant.tzinfo is UTC
    assert instant.astimezone(tz).replace(tzinfo=None) == naive
    # The first occurrence: no earlier instant shows the same wall time.
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    assert instant <= second


@settings(max_examples=300, deadline=None)
@given(instant=instants, name=st.sampled_from(ZONES))
def test_every_instant_is_found_again_from_its_wall_time(instant: datetime, name: str) -> None:
    tz = zone(name)
    wall = instant.astimezone(tz)
    resolved = resolve_local(wall.replace(tzinfo=None), tz)
    if wall.fold == 0:
        assert resolved == instant
    else:  # the second reading of an ambiguous wall time resolves to the first one
        assert resolved < instant
        assert resolved.astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None)


@settings(max_examples=200, deadline=None)
@given(
    first=st.dates(min_value=date(1990, 1, 1), max_value=date(2045, 1, 1)),
    extra=st.integers(min_value=0, max_value=40),
    name=st.sampled_from(ZONES),
)
def test_day_bounds_tile_the_range(first: date, extra: int, name: str) -> None:
    tz = zone(name)
    last = first + timedelta(days=extra)
    start, end = day_bounds(first, last, tz)
    assert start < end
    # Consecutive days share their boundary, and each day is 22-26 hours long.
    pieces = [
        day_bounds(first + timedelta(days=i), first + timedelta(days=i), tz)
        for i in range(extra + 1)
    ]
    assert pieces[0][0] == start
    assert pieces[-1][1] == end
    for (_, a_end), (b_start, _) in itertools.pairwise(pieces):
        assert a_end == b_start
    for a, b in pieces:
        assert timedelta(hours=22) <= b - a <= timedelta(hours=26)
