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


def clip(ranges: Iterable[Range], lower: datetime, upper: datetime) -> list[Range]:
    return [(max(s, lower), min(e, upper)) for s, e in ranges if s < upper and e > lower]


def covers(ranges: Iterable[Range], start: datetime, end: datetime) -> bool:
    """Whether one of the (merged) ranges contains all of `[start, end)`."""
    return any(s <= start and end <= e for s, e in merge(ranges))
