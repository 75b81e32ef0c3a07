"""The local-day table the conflicts' authorization check looks sessions up in: the same date as
`astimezone(zone).date()` for every instant, also across clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from therapy_scheduler.schedule.conflicts import local_days

MICROSECOND = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        ("America/New_York", datetime(2026, 3, 6, 15, tzinfo=UTC)),  # spring forward (02:00)
        ("America/New_York", datetime(2026, 10, 30, 15, tzinfo=UTC)),  # fall back (02:00)
        ("Asia/Tokyo", datetime(2026, 1, 5, 14, 30, tzinfo=UTC)),  # no clock change, UTC+9
        ("America/Santiago", datetime(2026, 9, 3, 12, tzinfo=UTC)),  # spring forward at midnight
        ("America/Santiago", datetime(2026, 4, 2, 12, tzinfo=UTC)),  # fall back at midnight
        ("Pacific/Apia", datetime(2011, 12, 27, tzinfo=UTC)),  # 30 December 2011 skipped
        (
            "America/Goose_Bay",
            datetime(1987, 10, 22, tzinfo=UTC),
        ),  # 00:01 back to 23:01 the day before
        ("Australia/Lord_Howe", datetime(2026, 4, 1, tzinfo=UTC)),  # 30-minute change
    ],
)
def test_every_instant_gets_its_local_date(zone: str, first: datetime) -> None:
    tz = ZoneInfo(zone)
    last = first + timedelta(days=6, hours=17)
    pieces = local_days(first, last, tz)
    assert pieces[0][1] <= first
    assert last < pieces[-1][2]
    for (_, _, end), (_, start, _) in pairwise(pieces):
        assert end == start  # contiguous
    for day, start, end in pieces:
        assert start.astimezone(tz).date() == day
        assert (end - MICROSECOND).astimezone(tz).date() == day
        instant = start
        while instant < end:  # every minute of the piece
            assert instant.astimezone(tz).date() == day
            instant += timedelta(minutes=1)
