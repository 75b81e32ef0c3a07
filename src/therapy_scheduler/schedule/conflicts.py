"""Schedule conflicts over a whole range (docs/API.md). Double bookings cannot exist, so they are never
reported; what is reported comes from imported history and from bookings made under `warn` policies."""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.calendar.availability import TherapistCalendar, load_calendars
from therapy_scheduler.calendar.travel import MAX_TRAVEL_MINUTES
from therapy_scheduler.calendar.weeks import weeks_around
from therapy_scheduler.kit.intervals import merge
from therapy_scheduler.kit.time import day_bounds, days
from therapy_scheduler.schedule.caps import weekly_cap_conflicts
from therapy_scheduler.schedule.queries.conflicts import (
    AuthorizationCheck,
    ConflictSession,
    Statement,
    authorization_checks,
    candidate_rows,
    conflict_candidates,
    visible_therapist_ids,
)
from therapy_scheduler.schedule.queries.pages import RangeShape
from therapy_scheduler.schedule.travel_conflicts import (
    ClosePair,
    TravelCheck,
    close_pairs,
    travel_conflicts,
)


async def find_conflicts(
    conn: AsyncConnection,
    *,
    sessions: Sequence[ConflictSession],
    candidates: Statement | None,
    candidate_values: dict[str, Any],
    calendars: dict[uuid.UUID, TherapistCalendar],
    organization_zone: ZoneInfo,
    buffer_minutes: int,
    travel: TravelCheck | None = None,
    checks: Callable[[], Awaitable[Checks]] | None = None,
) -> list[dict[str, Any]]:
    """`sessions` are the non-cancelled rows of the requested range (all pages), ordered by start.
    `candidates` is the statement that selects them with `candidate_values` (columns id,
    client_id, authorization_id, service_code, start_time), for the authorization checks, which
    the database answers; None leaves authorization conflicts out (callers who may not see
    authorizations). Build `candidates` once per kind of request: the authorization check built
    on it is cached by its identity. `checks`: the result of those checks, when the caller has
    started them already (`authorization_checks_of`, run alongside: infra/alongside.py)."""
    conflicts: list[dict[str, Any]] = []
    conflicts += _outside_availability(sessions, calendars)
    if candidates is not None and sessions:
        if checks is None:
            problems, capped = await authorization_checks_of(
                (sessions[0].start_time, sessions[-1].start_time),
                candidates,
                candidate_values,
                organization_zone,
            )(conn)
        else:
            problems, capped = await checks()
        conflicts += _authorization_problems(problems)
        conflicts += weekly_cap_conflicts(sessions, capped, organization_zone)
    if buffer_minutes > 0 or travel is not None:
        # The consecutive sessions at different places close enough for either rule, found once.
        reach = max(buffer_minutes, MAX_TRAVEL_MINUTES if travel is not None else 0)
        close = close_pairs(sessions, timedelta(minutes=reach))
        if buffer_minutes > 0:
            conflicts += _insufficient_breaks(close, buffer_minutes)
        if travel is not None:
            conflicts += await travel_conflicts(conn, close, travel)
    conflicts += _supervision_alone(sessions)
    return conflicts


Checks = tuple[list[AuthorizationCheck], list[AuthorizationCheck]]


def authorization_checks_of(
    starts: tuple[datetime, datetime],
    candidates: Statement,
    candidate_values: dict[str, Any],
    organization_zone: ZoneInfo,
) -> Callable[[AsyncConnection], Awaitable[Checks]]:
    """The authorization checks of `find_conflicts` for the candidates whose starts lie within
    `starts` (first, last: those of the sessions, or bounds of them), to run on a connection. Wider
    bounds give the same checks: more local days to look a start up in, and the sessions of more
    whole weeks, where only the weeks of the candidates can hold a conflict."""
    days = local_days(*starts, organization_zone)
    weeks = weeks_around(starts, organization_zone)
    return lambda conn: authorization_checks(conn, candidates, candidate_values, days, weeks)


def _supervision_alone(sessions: Sequence[ConflictSession]) -> list[dict[str, Any]]:
    """Supervising sessions whose supervised session was cancelled or moved (docs/BOOKING.md
    "Supervision overlap"): they stand alone, which is never silently resolved. The database
    marks them (`alone`, `queries/supervision.py`)."""
    return [
        {
            "type": "supervision_unsupported",
            "session_ids": [str(r.id)],
            "therapist_id": str(r.therapist_id),
            "client_id": str(r.client_id),
            "service_code": r.alone,
            "description": f"This supervision session no longer lies within a {r.alone} "
            "session of the client: it stands alone",
            "suggested_resolution": f"Book the client's {r.alone} session again around it, "
            "or cancel or move the supervision session",
        }
        for r in sessions
        if r.alone
    ]


def _outside_availability(
    sessions: Sequence[ConflictSession], calendars: dict[uuid.UUID, TherapistCalendar]
) -> list[dict[str, Any]]:
    """Sessions not within one merged working window of their therapist's local days. Sessions
    last at most `MAX_SESSION_LENGTH`, so they lie within the local day of their start and that of
    their end; windows never cross their day's bounds, so the windows of every day from the
    sessions' first local date to their last, merged once per therapist, hold a session exactly
    when those of its own one or two days do. Each session is then one bisection."""
    out: list[dict[str, Any]] = []
    if not sessions:
        return out
    lowest = sessions[0].start_time  # ordered by start
    highest = max(s.end_time for s in sessions)
    # Per therapist: the starts and ends of their merged windows over the sessions' days.
    spans: dict[uuid.UUID, tuple[list[datetime], list[datetime]]] = {}
    for therapist_id, calendar in calendars.items():
        tz = calendar.zone
        windows = merge(
            w
            for day in days(lowest.astimezone(tz).date(), highest.astimezone(tz).date())
            for w in calendar.windows(day)
        )
        spans[therapist_id] = ([w0 for w0, _ in windows], [w1 for _, w1 in windows])
    for s in sessions:
        span = spans.get(s.therapist_id)
        if span is None:
            continue
        start, end = s.start_time, s.end_time
        i = bisect_right(span[0], start) - 1
        if i >= 0 and end <= span[1][i]:
            continue
        calendar = calendars[s.therapist_id]
        reason = "time_off" if calendar.time_off_covers(start, end) else "outside_hours"
        out.append(
            {
                "type": "outside_availability",
                "session_ids": [str(s.id)],
                "therapist_id": str(s.therapist_id),
                "description": "Session is during the therapist's time off"
                if reason == "time_off"
                else "Session is outside the therapist's working hours",
                "suggested_resolution": "Move the session into a free slot of the therapist, "
                "or add extra hours to the therapist's availability",
                "reason": reason,
            }
        )
    return out


def _authorization_problems(rows: list[AuthorizationCheck]) -> list[dict[str, Any]]:
    """Sessions not covered by an approved authorization of their service on their date (in the
    organization's zone), then sessions beyond their service's approved units, grouped by
    service (`rows`: those of kind "a" of `authorization_checks`)."""
    out: list[dict[str, Any]] = []
    exhausted: dict[tuple[uuid.UUID | None, str], list[AuthorizationCheck]] = defaultdict(list)
    for r in rows:
        if r.uncovered:
            out.append(
                {
                    "type": "authorization_expired",
                    "session_ids": [str(r.id)],
                    "client_id": str(r.client_id),
                    "description": "No approved authorization covers this session's date and service",
                    "suggested_resolution": "Renew or extend the client's authorization, "
                    "or cancel the session",
                }
            )
        else:
            exhausted[(r.authorization_id, r.service_code)].append(r)
    for (auth_id, code), group in exhausted.items():
        out.append(
            {
                "type": "authorization_exhausted",
                "session_ids": [str(r.id) for r in group],
                "client_id": str(group[0].client_id),
                "authorization_id": str(auth_id),
                "service_code": code,
                "description": f"These sessions exceed the approved units of service {code}",
                "suggested_resolution": "Request more units from the payer, "
                "or cancel sessions beyond the authorization",
            }
        )
    return out


def local_days(
    first: datetime, last: datetime, tz: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """Consecutive UTC ranges [start, end) covering `first` to `last`, each with the local date in
    `tz` of every instant in it: one per local day, more on a day whose clock goes back across
    midnight (its instants after the change belong to the day before again)."""
    out: list[tuple[date, datetime, datetime]] = []
    one_day = timedelta(days=1)
    for day in days(first.astimezone(tz).date() - one_day, last.astimezone(tz).date() + one_day):
        for piece in _constant_date_pieces(*day_bounds(day, day, tz), tz):
            if out and out[-1][0] == piece[0] and out[-1][2] == piece[1]:
                out[-1] = (piece[0], out[-1][1], piece[2])
            else:
                out.append(piece)
    return out


def _constant_date_pieces(
    start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """[start, end) (at most a day) cut where the local date changes. Without a clock change
    inside (the UTC offset is the same at both ends) the date is that of `start` throughout;
    otherwise the halves are cut, down to the microsecond of the change. A day the clock skips
    is empty."""
    if end <= start:
        return []
    first, last = start.astimezone(tz), (end - _MICROSECOND).astimezone(tz)
    if first.utcoffset() == last.utcoffset() and first.date() == last.date():
        return [(first.date(), start, end)]
    middle = start + (end - start) / 2
    return _constant_date_pieces(start, middle, tz) + _constant_date_pieces(middle, end, tz)


_MICROSECOND = timedelta(microseconds=1)


def _insufficient_breaks(close: list[ClosePair], buffer_minutes: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for therapist_id, before, after in close:
        gap = (after.start_time - before.end_time).total_seconds() / 60
        if gap >= buffer_minutes:
            continue
        out.append(
            {
                "type": "insufficient_break",
                "session_ids": [str(before.id), str(after.id)],
                "therapist_id": str(therapist_id),
                "description": f"Only {int(gap)} minutes between sessions at different "
                f"locations; the organization requires {buffer_minutes}",
                "suggested_resolution": "Move one of the sessions to leave travel time",
            }
        )
    return out


async def visible_therapists(
    conn: AsyncConnection,
    principal: Principal,
    wanted: list[uuid.UUID],
    *,
    known: set[uuid.UUID],
) -> list[uuid.UUID]:
    """Availability is shown only for therapists the caller may see (a therapist: only themselves).
    `known`: ids already found visible in this request; only the others are looked up."""
    unknown = [t for t in wanted if t not in known]
    found = set(known)
    if unknown:
        found.update(await visible_therapist_ids(conn, principal, unknown))
    return [t for t in wanted if t in found]


async def range_conflicts(
    conn: AsyncConnection,
    principal: Principal,
    shape: RangeShape,
    values: dict[str, Any],
    range_start: datetime,
    range_end: datetime,
    now: datetime,
    *,
    loaded: dict[uuid.UUID, TherapistCalendar],
    active: Sequence[ConflictSession] | None,
    checks: Callable[[], Awaitable[Checks]] | None,
    visible_known: set[uuid.UUID],
) -> list[dict[str, Any]]:
    """Conflicts among the visible non-cancelled sessions of the range (`range_filter(shape)`
    with `values`). `loaded` are calendars of the same range already loaded (for the
    availability); only the other therapists' are loaded. `active`: those sessions (the columns
    of `conflict_candidates`, ordered by start and id) when the caller has already fetched them;
    fetched here otherwise; `checks`: their authorization checks, when already started (see
    `find_conflicts`). `visible_known`: therapists already found visible (see
    `visible_therapists`)."""
    candidates = conflict_candidates(shape)
    if active is None:
        active = await candidate_rows(conn, candidates, values)
    therapists = await visible_therapists(
        conn, principal, list(dict.fromkeys(r.therapist_id for r in active)), known=visible_known
    )
    calendars = {t: loaded[t] for t in therapists if t in loaded}
    calendars |= await load_calendars(
        conn,
        organization_id=principal.organization_id,
        therapist_ids=[t for t in therapists if t not in loaded],
        start=range_start,
        end=range_end,
        now=now,
        with_busy=False,
    )
    # Authorization conflicts would reveal authorization data to a therapist: not computed.
    sees = principal.can(Capability.SEE_AUTHORIZATIONS)
    return await find_conflicts(
        conn,
        sessions=active if sees else [r for r in active if r.therapist_id in calendars],
        candidates=candidates if sees else None,
        candidate_values=values,
        calendars=calendars,
        organization_zone=principal.zone,
        buffer_minutes=principal.settings.buffer_minutes,
        travel=TravelCheck.of(principal.organization_id, principal.settings),
        checks=checks if sees else None,
    )
