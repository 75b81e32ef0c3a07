"""The one RRULE parser (booking's recurring holds and the calendar feeds' series): what it accepts,
what it refuses and with which words, and the instances it expands to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from therapy_scheduler.kit.rrule import (
    MAX_COUNT,
    Rule,
    RuleError,
    local_instances,
    local_until,
    parse_rule,
)

NEW_YORK = ZoneInfo("America/New_York")


def _days(rule: Rule, start: datetime, tz: ZoneInfo = NEW_YORK) -> list[str]:
    return [i.strftime("%a %Y-%m-%d %H:%M") for i in local_instances(rule, start, tz, limit=50)]


def test_accepted_rule_is_normalised_and_until_kept_apart() -> None:
    rule = parse_rule(" rrule:freq=weekly; byday=mo, we ;interval=02;count=4 ")
    assert rule.text == "FREQ=WEEKLY;BYDAY=MO,WE;INTERVAL=02;COUNT=4"
    assert rule.until is None
    assert _days(rule, datetime(2027, 3, 1, 9)) == [
        "Mon 2027-03-01 09:00",
        "Wed 2027-03-03 09:00",
        "Mon 2027-03-15 09:00",
        "Wed 2027-03-17 09:00",
    ]
    dated = parse_rule("FREQ=MONTHLY;UNTIL=20270303;BYMONTHDAY=1,+2,3")
    assert dated.text == "FREQ=MONTHLY;BYMONTHDAY=1,2,3"
    assert dated.until == date(2027, 3, 3)
    instant = parse_rule("FREQ=DAILY;UNTIL=20270303T140000Z")
    assert instant.until == datetime(2027, 3, 3, 14, tzinfo=UTC)


def test_until_is_local_wall_clock_time_in_the_series_zone() -> None:
    assert local_until(parse_rule("FREQ=DAILY;COUNT=2"), NEW_YORK) is None
    assert local_until(parse_rule("FREQ=DAILY;UNTIL=20270303"), NEW_YORK) == datetime(
        2027, 3, 3, 23, 59, 59, 999_999
    )
    # 14:00 UTC is 09:00 in New York before the March change and 10:00 after it.
    winter = parse_rule("FREQ=DAILY;UNTIL=20270303T140000Z")
    summer = parse_rule("FREQ=DAILY;UNTIL=20270317T140000Z")
    assert local_until(winter, NEW_YORK) == datetime(2027, 3, 3, 9)
    assert local_until(summer, NEW_YORK) == datetime(2027, 3, 17, 10)
    assert _days(winter, datetime(2027, 3, 2, 9)) == [
        "Tue 2027-03-02 09:00",
        "Wed 2027-03-03 09:00",
    ]
    assert _days(summer, datetime(2027, 3, 16, 10)) == [
        "Tue 2027-03-16 10:00",
        "Wed 2027-03-17 10:00",
    ]
    assert _days(summer, datetime(2027, 3, 16, 10, 30)) == ["Tue 2027-03-16 10:30"]


def test_wkst_decides_which_weeks_an_interval_skips() -> None:
    # Every other week on Monday and Sunday, from Sunday 2027-03-07. With weeks starting on Monday
    # (the default) that Sunday closes a week, so the next instances are two weeks on; with weeks
    # starting on Sunday it opens one, and the Monday after it belongs to the same week.
    start = datetime(2027, 3, 7, 9)
    monday_weeks = parse_rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;COUNT=4")
    sunday_weeks = parse_rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU;COUNT=4")
    assert _days(monday_weeks, start) == [
        "Sun 2027-03-07 09:00",
        "Mon 2027-03-15 09:00",
        "Sun 2027-03-21 09:00",
        "Mon 2027-03-29 09:00",
    ]
    assert _days(sunday_weeks, start) == [
        "Sun 2027-03-07 09:00",
        "Mon 2027-03-08 09:00",
        "Sun 2027-03-21 09:00",
        "Mon 2027-03-22 09:00",
    ]


def test_expansion_stops_one_past_the_limit() -> None:
    rule = parse_rule(f"FREQ=DAILY;COUNT={MAX_COUNT}")
    assert len(local_instances(rule, datetime(2027, 1, 1, 9), NEW_YORK, limit=10)) == 11
    assert len(local_instances(rule, datetime(2027, 1, 1, 9), NEW_YORK, limit=500)) == MAX_COUNT
    with pytest.raises(ValueError, match="naive local dtstart"):
        local_instances(rule, datetime(2027, 1, 1, 9, tzinfo=UTC), NEW_YORK, limit=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("RRULE:", "is empty"),
        ("FREQ=DAILY;;COUNT=2", '"" is not NAME=VALUE'),
        ("FREQ=DAILY;COUNT=", '"COUNT=" is not NAME=VALUE'),
        ("FREQ=DAILY;count=2;COUNT=3", "COUNT is given twice"),
        ("FREQ=DAILY;BYSETPOS=1;BYHOUR=9;COUNT=2", "unsupported part(s): BYHOUR, BYSETPOS"),
        ("COUNT=2", "FREQ must be DAILY, WEEKLY or MONTHLY"),
        ("FREQ=HOURLY;COUNT=2", "FREQ must be DAILY, WEEKLY or MONTHLY"),
        ("FREQ=DAILY;INTERVAL=x;COUNT=2", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;INTERVAL=-1;COUNT=2", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;INTERVAL=\u00b2;COUNT=2", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;INTERVAL=0;COUNT=2", "INTERVAL must be between 1 and 366"),
        ("FREQ=DAILY;INTERVAL=367;COUNT=2", "INTERVAL must be between 1 and 366"),
        ("FREQ=DAILY;COUNT=\u00b2", "COUNT must be a whole number"),
        ("FREQ=DAILY;COUNT=201", "COUNT must be between 1 and 200"),
        ("FREQ=DAILY;UNTIL=2027-04-02", "UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ"),
        ("FREQ=DAILY;UNTIL=20270402T0900Z", "UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ"),
        ("FREQ=DAILY;UNTIL=20270402T090000X", "UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ"),
        ("FREQ=DAILY;UNTIL=20270402T090000", "a date-time UNTIL must be in UTC (end with Z)"),
        ("FREQ=DAILY;UNTIL=20270230", "UNTIL is not a valid date"),
        ("FREQ=DAILY;UNTIL=00000101", "UNTIL is not a valid date"),
        ("FREQ=DAILY;UNTIL=20270101T236000Z", "UNTIL is not a valid date-time"),
        ("FREQ=DAILY;UNTIL=20270101T240000Z", "UNTIL is not a valid date-time"),
        ("FREQ=DAILY;UNTIL=18991231", "UNTIL must be between 1900-01-01 and 2199-12-31"),
        ("FREQ=DAILY;UNTIL=22000101T000000Z", "UNTIL must be between 1900-01-01 and 2199-12-31"),
        ("FREQ=DAILY;COUNT=2;WKST=XX", "WKST must be a weekday code"),
        ("FREQ=WEEKLY;BYDAY=MO,;COUNT=2", 'BYDAY value "" is not a weekday like MO or 2TU'),
        ("FREQ=MONTHLY;BYDAY=+MO;COUNT=2", 'BYDAY value "+MO" is not a weekday like MO or 2TU'),
        ("FREQ=MONTHLY;BYDAY=100MO;COUNT=2", 'BYDAY value "100MO" is not a weekday like MO or 2TU'),
        (
            "FREQ=MONTHLY;BYDAY=MO(+1);COUNT=2",
            'BYDAY value "MO(+1)" is not a weekday like MO or 2TU',
        ),
        ("FREQ=DAILY;BYDAY=-1FR;COUNT=2", "ordinal BYDAY values (like 2TU) need FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYDAY=0MO;COUNT=2", "a BYDAY ordinal must be 1..5 or -5..-1"),
        ("FREQ=MONTHLY;BYDAY=-6MO;COUNT=2", "a BYDAY ordinal must be 1..5 or -5..-1"),
        ("FREQ=WEEKLY;BYMONTHDAY=1;COUNT=2", "BYMONTHDAY is only supported with FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,x;COUNT=2", 'BYMONTHDAY value "X" is not a number'),
        ("FREQ=MONTHLY;BYMONTHDAY=-32;COUNT=2", "BYMONTHDAY values must be 1..31 or -31..-1"),
    ],
)
def test_refusals_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert str(caught.value) == message
