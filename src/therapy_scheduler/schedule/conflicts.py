"""Schedule conflicts over a whole range (SPEC §6.1). Double bookings cannot exist, so they are never
reported; what is reported comes from imported history and from bookings made under `warn` policies."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.kit.intervals import merge
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuthorizationService, Session
from therapy_scheduler.reference.authorizations import balances_and_end_dates
from therapy_scheduler.schedule.availability import TherapistCalendar


async def find_conflicts(
    conn: AsyncConnection,
    *,
    sessions: list[Any],
    calendars: dict[uuid.UUID, TherapistCalendar],
    organization_zone: ZoneInfo,
    buffer_minutes: int,
) -> list[dict[str, Any]]:
    """`sessions` are the non-cancelled rows of the requested range (all pages), ordered by start."""
    conflicts: list[dict[str, Any]] = []
    conflicts += _outside_availability(sessions, calendars)
    conflicts += await _authorization_problems(conn, sessions, organization_zone)
    if buffer_minutes > 0:
        conflicts += _insufficient_breaks(sessions, buffer_minutes)
    return conflicts


def _outside_availability(
    sessions: list[Any], calendars: dict[uuid.UUID, TherapistCalendar]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    # Merged working windows of a therapist's local first and last day of a session (most sessions
    # lie within one day, so the key is usually (therapist, day, day)).
    windows_cache: dict[tuple[uuid.UUID, date, date], list[tuple[datetime, datetime]]] = {}
    for s in sessions:
        calendar = calendars.get(s.therapist_id)
        if calendar is None:
            continue
        tz = calendar.zone
        key = (s.therapist_id, s.start_time.astimezone(tz).date(), s.end_time.astimezone(tz).date())
        windows = windows_cache.get(key)
        if windows is None:
            windows = windows_cache[key] = merge(
                w for day in dict.fromkeys(key[1:]) for w in calendar.windows(day)
            )
        if any(w0 <= s.start_time and s.end_time <= w1 for w0, w1 in windows):
            continue
        reason = (
            "time_off" if calendar.time_off_covers(s.start_time, s.end_time) else "outside_hours"
        )
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


async def _authorization_problems(
    conn: AsyncConnection, sessions: list[Any], organization_zone: ZoneInfo
) -> list[dict[str, Any]]:
    auth_ids = {s.authorization_id for s in sessions if s.authorization_id is not None}
    # Approved units, total consumption and periods in one index-only query; the running sum below
    # is needed only for services whose total consumption exceeds their approved units (units are
    # never negative, so no running total of the others can exceed them).
    balances, periods = await balances_and_end_dates(conn, auth_ids, utcnow())
    approved = {key: b.approved for key, b in balances.items()}
    over_auth_ids = {key[0] for key, b in balances.items() if b.consumed > b.approved}
    over_limit: set[uuid.UUID] = set()
    if over_auth_ids:
        running = (
            select(
                Session.id,
                Session.authorization_id,
                Session.service_code,
                Session.start_time,
                func.sum(Session.units)
                .over(
                    partition_by=(Session.authorization_id, Session.service_code),
                    order_by=(Session.start_time, Session.id),
                )
                .label("running_units"),
            )
            .where(Session.authorization_id.in_(over_auth_ids), Session.consumes_units.is_(True))
            .subquery()
        )
        # Only the sessions past their service's approved units come back, not the whole history.
        beyond = select(running.c.id).join(
            AuthorizationService,
            and_(
                AuthorizationService.authorization_id == running.c.authorization_id,
                AuthorizationService.service_code == running.c.service_code,
            ),
        )
        # The running sum covers each authorization's whole history, but only sessions of this
        # list are looked up: bound the rows returned by the first and last start among them.
        first = min(s.start_time for s in sessions)
        last = max(s.start_time for s in sessions)
        over_limit = set(
            (
                await conn.execute(
                    beyond.where(
                        running.c.running_units > AuthorizationService.approved_units,
                        running.c.start_time >= first,
                        running.c.start_time <= last,
                    )
                )
            ).scalars()
        )

    out: list[dict[str, Any]] = []
    exhausted: dict[tuple[uuid.UUID, str], list[Any]] = defaultdict(list)
    for s in sessions:
        period = periods.get(s.authorization_id) if s.authorization_id else None
        day = s.start_time.astimezone(organization_zone).date()
        covered = (
            period is not None
            and period[2] == "approved"
            and period[0] <= day <= period[1]
            and (s.authorization_id, s.service_code) in approved
        )
        if not covered:
            out.append(
                {
                    "type": "authorization_expired",
                    "session_ids": [str(s.id)],
                    "client_id": str(s.client_id),
                    "description": "No approved authorization covers this session's date and service",
                    "suggested_resolution": "Renew or extend the client's authorization, "
                    "or cancel the session",
                }
            )
        elif s.id in over_limit:
            exhausted[(s.authorization_id, s.service_code)].append(s)
    for (auth_id, code), rows in exhausted.items():
        out.append(
            {
                "type": "authorization_exhausted",
                "session_ids": [str(r.id) for r in rows],
                "client_id": str(rows[0].client_id),
                "authorization_id": str(auth_id),
                "service_code": code,
                "description": f"These sessions exceed the approved units of service {code}",
                "suggested_resolution": "Request more units from the payer, "
                "or cancel sessions beyond the authorization",
            }
        )
    return out


def _insufficient_breaks(sessions: list[Any], buffer_minutes: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_therapist: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for s in sessions:
        by_therapist[s.therapist_id].append(s)
    for therapist_id, rows in by_therapist.items():
        rows.sort(key=lambda r: (r.start_time, r.id))
        for before, after in pairwise(rows):
            gap = (after.start_time - before.end_time).total_seconds() / 60
            if gap >= buffer_minutes or not _different_places(before, after):
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


def _different_places(a: Any, b: Any) -> bool:
    if a.location_id is not None and b.location_id is not None:
        return bool(a.location_id != b.location_id)
    return bool(a.location_type != b.location_type)
