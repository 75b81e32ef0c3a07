"""The recurrence of a recurring hold: its rule (`kit.rrule`, the subset we accept) and the local
start times it books.

The rule runs on *naive local* datetimes in the booking's zone, so a weekly 09:00 session stays at 09:00
local across daylight-saving changes (its UTC instant moves by the shift). Refusals are 400
VALIDATION_ERROR on the field `recurrence.rrule`; more than MAX_OCCURRENCES instances is 400
LIMIT_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from therapy_scheduler.errors import LimitExceeded, ValidationFailed
from therapy_scheduler.kit import rrule
from therapy_scheduler.kit.rrule import Rule
from therapy_scheduler.kit.time import LATEST_DATE

MAX_OCCURRENCES = rrule.MAX_COUNT

__all__ = ["MAX_OCCURRENCES", "Rule", "expand_local", "parse_rule"]


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"recurrence.rrule: {message}",
        details={"fields": [{"field": "recurrence.rrule", "message": message}]},
    )


def parse_rule(text: str) -> Rule:
    """Parse `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12` (an optional `RRULE:` prefix is allowed)."""
    try:
        return rrule.parse_rule(text)
    except rrule.RuleError as exc:
        raise _invalid(str(exc)) from exc


def expand_local(
    rule: Rule, dtstart: datetime, tz: ZoneInfo, exdates: Iterable[date] = ()
) -> list[datetime]:
    """Naive local start times of every instance, in order, without the excluded local dates.

    `dtstart` is naive local wall-clock time and must itself be an instance of the rule. At most
    MAX_OCCURRENCES instances (counted before exclusions) are allowed.
    """
    if dtstart.tzinfo is not None:
        raise ValueError("expand_local expects a naive local dtstart")
    instances = rrule.local_instances(rule, dtstart, tz, limit=MAX_OCCURRENCES)
    if len(instances) > MAX_OCCURRENCES:
        raise LimitExceeded(
            f"recurrence produces more than {MAX_OCCURRENCES} occurrences",
            details={"limit": "occurrences", "max": MAX_OCCURRENCES},
        )
    if not instances or instances[0] != dtstart:
        raise _invalid("session.start_time must itself be an instance of the rule (DTSTART)")
    if instances[-1].date() > LATEST_DATE:  # e.g. COUNT=200 with a long INTERVAL
        raise _invalid(f"the instances must end by {LATEST_DATE}")
    skipped = set(exdates)
    kept = [i for i in instances if i.date() not in skipped]
    if not kept:
        raise _invalid("every instance is excluded by exdates")
    return kept
