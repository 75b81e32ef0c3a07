"""Which of the free slots (`booking/slots.py`) to offer: the earliest for suggestions, the closest to
the refused time for a conflict's alternatives; never two overlapping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from therapy_scheduler.booking.slots import Slot


def earliest(slots: Iterator[Slot], limit: int) -> list[Slot]:
    """The first `limit` slots in time, no two overlapping (distinct choices)."""
    chosen: list[Slot] = []
    for slot in slots:
        if chosen and slot.start < chosen[-1].end:
            continue
        chosen.append(slot)
        if len(chosen) == limit:
            break
    return chosen


def closest(slots: Iterator[Slot], around: datetime, limit: int) -> list[Slot]:
    """The `limit` slots closest to `around` (ties: the earlier), no two overlapping, in time order."""
    ranked = sorted(slots, key=lambda s: (abs((s.start - around).total_seconds()), s.start))
    chosen: list[Slot] = []
    for slot in ranked:
        if all(slot.end <= other.start or other.end <= slot.start for other in chosen):
            chosen.append(slot)
            if len(chosen) == limit:
                break
    return sorted(chosen, key=lambda s: s.start)
