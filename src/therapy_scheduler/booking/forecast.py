"""The forecast of a hold (docs/BOOKING.md "Forecast"): per occurrence, whether it can be held and
every reason it cannot (or, under a `warn` policy, the warnings it would carry), what it would spend
of which authorization and the units left after it, and the last occurrence each authorization
covers. Built from `find_problems` (booking/rules/apply.py): the dry run shows it, and a hold refused
on authorization carries it in `details.forecast`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from itertools import groupby
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking.errors import (
    AuthorizationExhausted,
    AuthorizationMissing,
    ClientConflict,
    ClientHoldConflict,
    InsufficientBreak,
    InsufficientTravelTime,
    OutsideAvailability,
    SupervisionNotContained,
    SupervisorCredentialRequired,
    TherapistConflict,
    TherapistHoldConflict,
    WeeklyCapExceeded,
)
from therapy_scheduler.booking.rules.apply import Booking, Found, Judged
from therapy_scheduler.booking.rules.checks import Problem
from therapy_scheduler.kit.time import iso_utc

# The errors about the authorization: a hold refused with one of them carries the forecast.
AUTHORIZATION_ERRORS = frozenset(
    {AuthorizationMissing.code, AuthorizationExhausted.code, WeeklyCapExceeded.code}
)
# Details that name authorization data: shown only to callers who may see authorizations.
_PRIVATE_OCCURRENCE_FIELDS = ("authorization_id", "units", "units_remaining")


def forecast_json(booking: Booking, found: Found, principal: Principal) -> dict[str, Any]:
    """The forecast of `booking` from what `find_problems` found (see the module docstring)."""
    see_authorizations = principal.can(Capability.SEE_AUTHORIZATIONS)
    code = booking.service_code
    by_occurrence: dict[int, list[Judged]] = defaultdict(list)
    for problem in found.problems:
        by_occurrence[problem.problem.occurrence_index].append(problem)
    balances = {
        c.authorization_id: found.balances.get((c.authorization_id, code)) for c in found.coverages
    }
    left = {a: (b.remaining if b else 0) for a, b in balances.items()}
    last_covered: dict[uuid.UUID, int] = {}
    occurrences: list[dict[str, Any]] = []
    for index, (o, plan) in enumerate(zip(booking.occurrences, found.plans, strict=True)):
        judged = by_occurrence[index]
        codes = {j.problem.error.code for j in judged}
        authorization = plan.authorization_id
        spends = authorization is not None and not codes & {
            AuthorizationMissing.code,
            AuthorizationExhausted.code,
        }
        if spends and authorization is not None:
            left[authorization] -= plan.units
            if not codes & AUTHORIZATION_ERRORS:
                last_covered[authorization] = index
        row: dict[str, Any] = {
            "number": index + 1,
            "occurrence_index": index,
            **o.as_json(),
            "bookable": not any(j.blocking for j in judged),
            "reasons": [_reason(j, see_authorizations) for j in judged],
            "authorization_id": str(authorization) if spends else None,
            "units": plan.units,
            "units_remaining": left[authorization] if spends and authorization else None,
        }
        if not see_authorizations:
            for name in _PRIVATE_OCCURRENCE_FIELDS:
                row.pop(name)
        occurrences.append(row)
    last = max(last_covered.values(), default=None)
    out: dict[str, Any] = {
        "bookable": all(row["bookable"] for row in occurrences),
        "occurrence_count": len(occurrences),
        "bookable_count": sum(1 for row in occurrences if row["bookable"]),
        "last_covered_occurrence": _occurrence_ref(booking, last),
        "summary": _summary(found.problems, see_authorizations),
        "occurrences": occurrences,
    }
    if see_authorizations:
        out["authorizations"] = [
            {
                "authorization_id": str(c.authorization_id),
                "start_date": c.start_date.isoformat(),
                "end_date": c.end_date.isoformat(),
                "units_remaining_before": b.remaining if b else 0,
                "units_remaining_after": left[c.authorization_id],
                "weekly_cap_units": b.weekly_cap_units if b else None,
                "weekly_cap_hours": (
                    b.weekly_cap_minutes / 60 if b and b.weekly_cap_minutes is not None else None
                ),
                "last_covered_occurrence": _occurrence_ref(
                    booking, last_covered.get(c.authorization_id)
                ),
            }
            for c in found.coverages
            for b in [balances[c.authorization_id]]
        ]
    return out


def _occurrence_ref(booking: Booking, index: int | None) -> dict[str, Any] | None:
    if index is None:
        return None
    return {
        "number": index + 1,
        "occurrence_index": index,
        "start_time": iso_utc(booking.occurrences[index].start),
    }


def _reason(judged: Judged, see_authorizations: bool) -> dict[str, Any]:
    p = judged.problem
    out: dict[str, Any] = {
        "code": p.error.code,
        "message": p.message,
        "blocking": judged.blocking,
        **p.details,
    }
    if see_authorizations:
        out.update(p.private_details)
    return out


def _summary(problems: list[Judged], see_authorizations: bool) -> list[str]:
    """One sentence per kind of problem, naming the occurrences by number (1 is the first), e.g.
    "Occurrences 9-12 fall after the authorization ends on 2027-03-31" (with an en dash), in the
    order the problems were found. Authorization figures (a weekly cap's size) only for callers who
    may see authorizations."""
    groups: dict[tuple[str, ...], list[Problem]] = defaultdict(list)
    for j in problems:
        p = j.problem
        groups[_summary_key(p, see_authorizations)].append(p)
    return [_summary_line(key, found) for key, found in groups.items()]


def _summary_key(p: Problem, see_authorizations: bool) -> tuple[str, ...]:
    code, details = p.error.code, p.details
    reason = str(details.get("reason", ""))
    if reason == "after_end_date":
        return (code, reason, str(details["end_date"]))
    if reason == "before_start_date":
        return (code, reason, str(details["start_date"]))
    if reason == "not_approved":
        return (code, reason, str(details["status"]))
    if code == WeeklyCapExceeded.code:
        return (code, reason, str(details["service_code"]), _cap(p) if see_authorizations else "")
    if code == InsufficientBreak.code:
        return (code, reason, str(details.get("buffer_minutes", "")))
    if code == SupervisorCredentialRequired.code:
        return (
            code,
            reason,
            str(details.get("supervised_service_code", "")),
            str(details.get("credential") or ""),
        )
    return (code, reason, str(details.get("service_code", "")))


def _cap(p: Problem) -> str:
    """ "4 units" or "1.5 hours": the weekly cap an occurrence goes over."""
    private = p.private_details
    if private.get("weekly_cap_units") is not None:
        return f"{private['weekly_cap_units']} units"
    if private.get("weekly_cap_hours") is not None:
        return f"{private['weekly_cap_hours']:g} hours"
    return ""


# Sentences of the problems that need no more than the occurrences: (singular, plural) after "Occurrence
# 2" / "Occurrences 2-3".
_SIMPLE: dict[tuple[str, str], tuple[str, str]] = {
    (TherapistConflict.code, ""): (
        "overlaps another session of the therapist",
        "overlap other sessions of the therapist",
    ),
    (ClientConflict.code, ""): (
        "overlaps another session of the client",
        "overlap other sessions of the client",
    ),
    (TherapistHoldConflict.code, ""): (
        "overlaps time already held for the therapist",
        "overlap time already held for the therapist",
    ),
    (ClientHoldConflict.code, ""): (
        "overlaps time already held for the client",
        "overlap time already held for the client",
    ),
    (OutsideAvailability.code, "outside_hours"): (
        "falls outside the therapist's working hours",
        "fall outside the therapist's working hours",
    ),
    (OutsideAvailability.code, "time_off"): (
        "falls during the therapist's time off",
        "fall during the therapist's time off",
    ),
    (InsufficientTravelTime.code, ""): (
        "leaves too little time to travel to or from the therapist's session at another place",
        "leave too little time to travel to or from the therapist's sessions at other places",
    ),
}


def _summary_line(key: tuple[str, ...], found: list[Problem]) -> str:
    code, reason, value, *more = key
    numbers = sorted({p.occurrence_index + 1 for p in found})
    many = len(numbers) > 1
    which = f"Occurrence{'s' if many else ''} {_ranges(numbers)}"

    def verb(one: str, several: str) -> str:
        return several if many else one

    simple = _SIMPLE.get((code, reason))
    if simple is not None:
        return f"{which} {verb(*simple)}"
    if reason == "after_end_date":
        return f"{which} {verb('falls', 'fall')} after the authorization ends on {value}"
    if reason == "before_start_date":
        return f"{which} {verb('falls', 'fall')} before the authorization starts on {value}"
    if reason == "not_approved":
        return (
            f"{which} {verb('falls', 'fall')} under an authorization that is {value}, not approved"
        )
    if reason == "no_authorization":
        return f"{which}: no authorization of the client covers service {value}"
    if reason == "units_exhausted":
        return f"{which}: not enough authorized units of service {value} left"
    if code == WeeklyCapExceeded.code:
        weeks = sorted({str(p.details["week"]) for p in found})
        cap = f"weekly cap of {more[0]}" if more and more[0] else "weekly cap"
        return (
            f"{which} {verb('goes', 'go')} over the {cap} of service {value} in the "
            f"week{'s' if len(weeks) > 1 else ''} of Monday {', '.join(weeks)}"
        )
    if code == InsufficientBreak.code:
        return (
            f"{which} {verb('leaves', 'leave')} less than the {value} minutes' break between the "
            "therapist's sessions at different places"
        )
    if code == SupervisionNotContained.code and reason == "not_within_supervised":
        return (
            f"{which} {verb('supervises', 'supervise')} the client's {value} session but "
            f"{verb('does', 'do')} not lie within it"
        )
    if code == SupervisionNotContained.code and reason == "supervision_not_within":
        return (
            f"{which} {verb('overlaps', 'overlap')} the client's {value} supervision without "
            "containing it"
        )
    if code == SupervisorCredentialRequired.code:
        credential = more[0] if more and more[0] else None
        who = f"the therapist is {_article(credential)}" if credential else "no credential on file"
        return (
            f"{which} would supervise the client's {value} session, which only a BCBA or BCaBA "
            f"may do ({who})"
        )
    return f"{which}: {code}" + (f" ({reason})" if reason else "")


def _article(credential: str) -> str:
    return f"{'an' if credential[:1].upper() in 'AEFHILMNORSX' else 'a'} {credential}"


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5", with an en dash between the ends of a run."""
    runs = []
    for _, run in groupby(enumerate(numbers), key=lambda pair: pair[1] - pair[0]):
        values = [n for _, n in run]
        runs.append(str(values[0]) if len(values) == 1 else f"{values[0]}\N{EN DASH}{values[-1]}")
    return ", ".join(runs)
