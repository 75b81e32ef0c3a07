"""Time to parse and expand recurrence rules, the current code against the code at a git ref.

    .venv/bin/python -m bench.rrule_cost                 # against main
    .venv/bin/python -m bench.rrule_cost --ref HEAD~3 --rounds 7 --number 2000

Two paths, both in-process and without a database:
* booking: `parse_rule` + `expand_local` of `booking/recurrence.py` (what a recurring hold runs);
* feed: `_expand` of `feeds/ics.py` (what a calendar feed runs for each series it compacts).
Each (rule, path) is timed `--rounds` times, old and new alternately (so that both see the same load
from neighbours), `--number` calls per timing, in CPU time of this process (`time.process_time`: the
time neighbours on a shared machine take the CPU away is not counted). The table shows CPU µs per
call, the fastest round (the least disturbed) and the median, and new/old of the fastest.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from bench.versions import module_at
from therapy_scheduler.booking import recurrence as new_recurrence
from therapy_scheduler.feeds import ics as new_ics

ZONE = ZoneInfo("America/New_York")
START = datetime(2027, 3, 1, 9, 0)  # a Monday; the March change to daylight time follows
RULES = [
    "FREQ=WEEKLY;COUNT=12",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=36",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;UNTIL=20271231T235959Z",
    "FREQ=DAILY;UNTIL=20270531",
    "FREQ=MONTHLY;BYDAY=1MO;COUNT=12",
    "FREQ=WEEKLY;COUNT=200",
]


def _booking(module: ModuleType, rule: str) -> Callable[[], Any]:
    return lambda: module.expand_local(module.parse_rule(rule), START, ZONE)


def _feed(module: ModuleType, rule: str) -> Callable[[], Any]:
    series = module.SeriesRecurrence(
        series_id=uuid.UUID(int=1),
        rrule=rule,
        time_zone=ZONE.key,
        dtstart=START.replace(tzinfo=ZONE).astimezone(UTC),
    )
    return lambda: module._expand(series)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main", help="git ref of the old code (default main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=1000, help="calls per timing")
    args = parser.parse_args()
    old_recurrence = module_at(
        args.ref, "src/therapy_scheduler/booking/recurrence.py", "old_recurrence"
    )
    old_ics = module_at(args.ref, "src/therapy_scheduler/feeds/ics.py", "old_ics")
    print(
        f"{'path':8} {'rule':55} {'old min':>8} {'new min':>8} {'old med':>8} {'new med':>8} new/old"
    )
    for path, make, old, new in (
        ("booking", _booking, old_recurrence, new_recurrence),
        ("feed", _feed, old_ics, new_ics),
    ):
        for rule in RULES:
            calls = {"old": make(old, rule), "new": make(new, rule)}
            old_result, new_result = calls["old"](), calls["new"]()
            if path == "booking" and old_result != new_result:
                raise SystemExit(f"{rule}: the versions disagree")
            if path == "feed" and (old_result is None) != (new_result is None):
                raise SystemExit(f"{rule}: the versions disagree")
            times: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.rounds):
                for name, call in calls.items():
                    seconds = timeit.timeit(call, number=args.number, timer=time.process_time)
                    times[name].append(seconds / args.number * 1e6)
            o, n = min(times["old"]), min(times["new"])
            om, nm = statistics.median(times["old"]), statistics.median(times["new"])
            print(f"{path:8} {rule:55} {o:8.1f} {n:8.1f} {om:8.1f} {nm:8.1f} {n / o:7.2f}")


if __name__ == "__main__":
    main()
