"""Arithmetic on lists of half-open `[start, end)` ranges (see kit.time for the convention)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

Range = tuple[datetime, datetime]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, non-overlapping ranges; touching ranges are joined."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(ranges: Iterable[Range], holes: Iterable[Range]) -> list[Range]:
    """`ranges` minus every hole, in sorted order."""
    result = merge(ranges)
    for h_start, h_end in merge(holes):
        pieces: list[Range] = []
        for start, end in result:
            if h_end <= start or h_start >= end:
                pieces.append((start, end))
                continue
            if start < h_start:
                pieces.append((start, h_start))
            if h_end < end:
                pieces.append((h_end, end))
        result = pieces
    return result


def subtract_sorted(ranges: list[Range], holes: list[Range], first: int = 0) -> list[Range]:
    """`subtract(ranges, holes[first:])` in one pass, for ranges and holes already as `merge`
    returns them (sorted, disjoint, none empty)."""
    out: list[Range] = []
    i, count = first, len(holes)
    for start, end in ranges:
        while i < count and holes[i][1] <= start:
            i += 1
        j = i
        while j < count and holes[j][0] < end:
            hole_start, hole_end = holes[j]
            if start < hole_start:
                out.append((start, hole_start))
            if hole_end > start:
                start = hole_end
            j += 1
        if start < end:
            out.append((start, end))
    return out


def clip(ranges: Iterable[Range], lower: datetime, upper: datetime) -> list[Range]:
    return [(max(s, lower), min(e, upper)) for s, e in ranges if s < upper and e > lower]


def covers(ranges: Iterable[Range], start: datetime, end: datetime) -> bool:
    """Whether one of the (merged) ranges contains all of `[start, end)`."""
    return any(s <= start and end <= e for s, e in merge(ranges))
