"""Range arithmetic (kit/intervals.py): the one-pass subtraction of sorted ranges is `subtract`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_scheduler.kit.intervals import Range, merge, subtract, subtract_sorted

_BASE = datetime(2026, 3, 9, tzinfo=UTC)
_ranges = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 15)).map(
        lambda p: (_BASE + timedelta(minutes=p[0]), _BASE + timedelta(minutes=p[0] + p[1]))
    ),
    max_size=8,
)


@settings(max_examples=300)
@given(ranges=_ranges, holes=_ranges, first=st.integers(0, 8))
def test_subtract_sorted_is_subtract_of_the_holes_from_first(
    ranges: list[Range], holes: list[Range], first: int
) -> None:
    windows, merged = merge(ranges), merge(holes)
    first = min(first, len(merged))
    assert subtract_sorted(windows, merged, first) == subtract(windows, merged[first:])


def test_subtract_sorted_touching_holes_cut_nothing() -> None:
    hour = timedelta(hours=1)
    window = [(_BASE, _BASE + 2 * hour)]
    assert (
        subtract_sorted(window, [(_BASE - hour, _BASE), (_BASE + 2 * hour, _BASE + 3 * hour)])
        == window
    )
    assert subtract_sorted(window, [(_BASE, _BASE + 2 * hour)]) == []
