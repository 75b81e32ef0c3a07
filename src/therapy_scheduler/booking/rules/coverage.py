"""Why no authorization covers an occurrence (docs/BOOKING.md): the date falls after the
authorization's end or before its start, the authorization covering it is not approved (pending,
denied, expired), or the client has none for the service. Refines the `AUTHORIZATION_MISSING`
problems of `plan_units` with `details.reason` and a message that says it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

from therapy_scheduler.booking.errors import AuthorizationExhausted, AuthorizationMissing
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries.caps import ClientAuthorization
from therapy_scheduler.booking.rules.checks import Problem


def explain_uncovered(
    problems: list[Problem],
    occurrences: list[Occurrence],
    authorizations: list[ClientAuthorization],
    *,
    service_code: str,
    named_in: ZoneInfo,
) -> list[Problem]:
    """`problems` with each `AUTHORIZATION_MISSING` and `AUTHORIZATION_EXHAUSTED` one given its
    reason (`authorizations`: every authorization of the client for the service); others unchanged."""
    out: list[Problem] = []
    for p in problems:
        if p.error is AuthorizationMissing:
            p = _explained(
                p, occurrences[p.occurrence_index], authorizations, service_code, named_in
            )
        elif p.error is AuthorizationExhausted:
            p = replace(p, details={**p.details, "reason": "units_exhausted"})
        out.append(p)
    return out


def _explained(
    problem: Problem,
    occurrence: Occurrence,
    authorizations: list[ClientAuthorization],
    service_code: str,
    named_in: ZoneInfo,
) -> Problem:
    day = date.fromisoformat(problem.details["date"])
    label = occurrence.label(named_in)
    covering = [a for a in authorizations if a.start_date <= day <= a.end_date]
    approved = [a for a in authorizations if a.status == "approved"]
    ended = [a for a in approved if a.end_date < day]
    later = [a for a in approved if a.start_date > day]
    extra: dict[str, str] = {}
    if covering:
        status = covering[0].status
        reason = "not_approved"
        extra = {"status": status}
        message = (
            f"The occurrence on {label} falls under an authorization of service {service_code} "
            f"that is {status}, not approved"
        )
    elif ended:
        end = max(a.end_date for a in ended)
        reason = "after_end_date"
        extra = {"end_date": end.isoformat()}
        message = f"The occurrence on {label} falls after the authorization ends on {end}"
    elif later:
        start = min(a.start_date for a in later)
        reason = "before_start_date"
        extra = {"start_date": start.isoformat()}
        message = f"The occurrence on {label} falls before the authorization starts on {start}"
    else:
        return replace(problem, details={**problem.details, "reason": "no_authorization"})
    return replace(problem, message=message, details={**problem.details, "reason": reason, **extra})
