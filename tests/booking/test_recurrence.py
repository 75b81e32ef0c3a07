"""Recurrence expansion and local-time resolution across DST (property tests, no database)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_scheduler.booking.occurrences import requested_occurrences
from therapy_scheduler.booking.recurrence import MAX_OCCURRENCES, expand_local, parse_rule
from therapy_scheduler.booking.schemas import HoldBody
from therapy_scheduler.errors import LimitExceeded, ValidationFailed
from therapy_scheduler.kit.time import NonexistentLocalTime, resolve_local

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Lord_Howe"]
T = "00000000-0000-0000-0000-00000000a201"
C = "00000000-0000-0000-0000-00000000a301"

zones = st.sampled_from(ZONES).map(ZoneInfo)
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2031, 12, 31))
quarter_hours = st.builds(
    time, st.integers(min_value=0, max_value=23), st.sampled_from([0, 15, 30, 45])
)


def in_gap(naive: datetime, tz: ZoneInfo) -> bool:
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive


@settings(max_examples=300, deadline=None)
@given(
    tz=zones,
    day=days,
    at=quarter_hours,
    freq=st.sampled_from(["DAILY", "WEEKLY"]),
    interval=st.integers(min_value=1, max_value=3),
    count=st.integers(min_value=1, max_value=60),
)
def test_instances_keep_local_wall_clock_time(
    tz: ZoneInfo, day: date, at: time, freq: str, interval: int, count: int
) -> None:
    start = datetime.combine(day, at)
    rule = parse_rule(f"FREQ={freq};INTERVAL={interval};COUNT={count}")
    instances = expand_local(rule, start, tz)
    assert len(instances) == count
    step = timedelta(days=interval if freq == "DAILY" else 7 * interval)
    assert instances == [start + i * step for i in range(count)]
    for local in instances:
        assert local.time() == at
        if in_gap(local, tz):
            with pytest.raises(NonexistentLocalTime):
                resolve_local(local, tz)
            continue
        instant = resolve_local(local, tz)
        # The instant shows the same wall-clock time in the zone ...
        assert instant.astimezone(tz).replace(tzinfo=None) == local
        # ... and in a fall-back overlap it is the first of the two (the larger UTC offset).
        first = local.replace(tzinfo=tz, fold=0).utcoffset()
        second = local.replace(tzinfo=tz, fold=1).utcoffset()
        assert first is not None
        assert second is not None
        assert instant.astimezone(tz).utcoffset() == max(first, second)


@settings(max_examples=200, deadline=None)
@given(
    tz=zones,
    day=days,
    at=quarter_hours,
    minutes=st.sampled_from([15, 30, 60, 90, 120, 480]),
    count=st.integers(min_value=1, max_value=30),
    skip=st.sets(st.integers(min_value=1, max_value=29), max_size=5),
)
def test_hold_occurrences_follow_the_rule(
    tz: ZoneInfo, day: date, at: time, minutes: int, count: int, skip: set[int]
) -> None:
    start = datetime.combine(day, at)
    exdates = sorted((day + timedelta(weeks=i)).isoformat() for i in skip if i < count)
    body = HoldBody.model_validate(
        {
            "session": {"therapist_id": T, "client_id": C, "start_time": start.isoformat()},
            "duration_minutes": minutes,
            "time_zone": tz.key,
            "recurrence": {"rrule": f"FREQ=WEEKLY;COUNT={count}", "exdates": exdates},
        }
    )
    expected_locals = [
        start + timedelta(weeks=i) for i in range(count) if i not in skip or i >= count
    ]
    if in_gap(start, tz):
        with pytest.raises(NonexistentLocalTime):
            requested_occurrences(body, tz)
        return
    gaps = [i for i, local in enumerate(expected_locals) if in_gap(local, tz)]
    if gaps:
        with pytest.raises(NonexistentLocalTime) as caught:
            requested_occurrences(body, tz)
        assert caught.value.details["occurrence_index"] == gaps[0]
        return
    occurrences = requested_occurrences(body, tz)
    assert [o.start.astimezone(tz).replace(tzinfo=None) for o in occurrences] == expected_locals
    assert all(o.end - o.start == timedelta(minutes=minutes) for o in occurrences)
    assert all(o.start.tzinfo == UTC for o in occurrences)
    assert all(a.start < b.start for a, b in itertools.pairwise(occurrences))


@settings(max_examples=100, deadline=None)
@given(
    tz=zones,
    year=st.integers(min_value=2026, max_value=2031),
    month=st.integers(min_value=1, max_value=12),
    nth=st.sampled_from([1, 2, 3, 4, -1]),
    count=st.integers(min_value=1, max_value=24),
)
def test_monthly_nth_weekday(tz: ZoneInfo, year: int, month: int, nth: int, count: int) -> None:
    first_of_month = date(year, month, 1)
    tuesdays = [
        first_of_month + timedelta(days=d)
        for d in range(31)
        if (first_of_month + timedelta(days=d)).month == month
        and (first_of_month + timedelta(days=d)).weekday() == 1
    ]
    day = tuesdays[nth - 1] if nth > 0 else tuesdays[-1]
    start = datetime.combine(day, time(15, 30))
    instances = expand_local(parse_rule(f"FREQ=MONTHLY;BYDAY={nth}TU;COUNT={count}"), start, tz)
    assert len(instances) == count
    for local in instances:
        assert local.weekday() == 1
        assert local.time() == time(15, 30)
        same_month = [
            d
            for d in range(1, 32)
            if _valid(local.year, local.month, d)
            and date(local.year, local.month, d).weekday() == 1
        ]
        position = same_month.index(local.day)
        assert position == (nth - 1 if nth > 0 else len(same_month) - 1)


def _valid(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def test_lord_howe_half_hour_shift() -> None:
    """Lord Howe moves its clocks by 30 minutes: 02:00-02:30 is skipped in October and 01:30-02:00
    happens twice in April."""
    tz = ZoneInfo("Australia/Lord_Howe")
    with pytest.raises(NonexistentLocalTime):
        resolve_local(datetime(2026, 10, 4, 2, 15), tz)
    assert resolve_local(datetime(2026, 10, 4, 2, 30), tz) == datetime(
        2026, 10, 3, 15, 30, tzinfo=UTC
    )
    # Ambiguous 01:45 on 2027-04-04: first occurrence is at +11:00.
    assert resolve_local(datetime(2027, 4, 4, 1, 45), tz) == datetime(
        2027, 4, 3, 14, 45, tzinfo=UTC
    )
    weekly = expand_local(parse_rule("FREQ=WEEKLY;COUNT=3"), datetime(2026, 9, 27, 9, 0), tz)
    instants = [resolve_local(w, tz) for w in weekly]
    assert [i.isoformat() for i in instants] == [
        "2026-09-26T22:30:00+00:00",  # +10:30
        "2026-10-03T22:00:00+00:00",  # +11:00 after the 30-minute shift
        "2026-10-10T22:00:00+00:00",
    ]


def test_new_york_weekly_across_spring_forward() -> None:
    tz = ZoneInfo("America/New_York")
    weekly = expand_local(
        parse_rule("FREQ=WEEKLY;BYDAY=MO;COUNT=2"), datetime(2027, 3, 8, 9, 0), tz
    )
    assert [resolve_local(w, tz) for w in weekly] == [
        datetime(2027, 3, 8, 14, 0, tzinfo=UTC),
        datetime(2027, 3, 15, 13, 0, tzinfo=UTC),
    ]


def test_until_and_exdates() -> None:
    tz = ZoneInfo("Europe/London")
    start = datetime(2027, 3, 22, 10, 0)
    rule = parse_rule("FREQ=DAILY;UNTIL=20270402")
    assert len(expand_local(rule, start, tz)) == 12
    utc_until = parse_rule("FREQ=DAILY;UNTIL=20270324T090000Z")  # 09:00 UTC = 09:00 GMT
    assert expand_local(utc_until, start, tz) == [
        datetime(2027, 3, 22, 10),
        datetime(2027, 3, 23, 10),
    ]
    kept = expand_local(rule, start, tz, {date(2027, 3, 23), date(2027, 3, 30)})
    assert len(kept) == 10
    assert date(2027, 3, 23) not in {k.date() for k in kept}


@pytest.mark.parametrize(
    ("rrule", "message"),
    [
        ("FREQ=YEARLY;COUNT=2", "FREQ must be DAILY, WEEKLY or MONTHLY"),
        ("FREQ=WEEKLY", "COUNT or UNTIL is required"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20270101", "COUNT and UNTIL are mutually exclusive"),
        ("FREQ=WEEKLY;COUNT=0", "COUNT must be between 1 and 200"),
        ("FREQ=WEEKLY;COUNT=201", "COUNT must be between 1 and 200"),
        ("FREQ=WEEKLY;BYDAY=2TU;COUNT=3", "ordinal BYDAY values (like 2TU) need FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYHOUR=9;COUNT=3", "unsupported part(s): BYHOUR"),
        ("FREQ=WEEKLY;BYDAY=XX;COUNT=3", 'BYDAY value "XX" is not a weekday like MO or 2TU'),
        ("FREQ=DAILY;UNTIL=20270101T000000", "a date-time UNTIL must be in UTC (end with Z)"),
        ("FREQ=DAILY;COUNT=2;COUNT=3", "COUNT is given twice"),
        ("nonsense", '"nonsense" is not NAME=VALUE'),
    ],
)
def test_rule_errors(rrule: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_rule(rrule)
    assert caught.value.message == f"recurrence.rrule: {message}"


def test_limits_and_dtstart() -> None:
    tz = ZoneInfo("America/New_York")
    with pytest.raises(LimitExceeded):
        expand_local(parse_rule("FREQ=DAILY;UNTIL=20300101"), datetime(2027, 1, 1, 9), tz)
    assert (
        len(
            expand_local(
                parse_rule(f"FREQ=DAILY;COUNT={MAX_OCCURRENCES}"), datetime(2027, 1, 1, 9), tz
            )
        )
        == 200
    )
    with pytest.raises(ValidationFailed) as caught:
        # 2027-03-09 is a Tuesday: DTSTART is not an instance of a Monday rule.
        expand_local(parse_rule("FREQ=WEEKLY;BYDAY=MO;COUNT=2"), datetime(2027, 3, 9, 9), tz)
    assert "DTSTART" in caught.value.message
    with pytest.raises(ValidationFailed):
        expand_local(
            parse_rule("FREQ=DAILY;COUNT=1"), datetime(2027, 3, 9, 9), tz, {date(2027, 3, 9)}
        )
