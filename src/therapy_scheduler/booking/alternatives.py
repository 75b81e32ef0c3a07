"""Up to three free slots near a refused occurrence, for the same therapist and client (SPEC §6.4).

A slot is free when it lies inside the therapist's working windows (weekly hours plus extra hours minus
time off, in the therapist's zone), overlaps no non-cancelled session or active hold of either person,
and keeps the organization's travel buffer. Candidates start on quarter hours, in the future, within two
weeks of the requested day; the closest to the requested start win, and no two suggestions overlap.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.booking.queries import Busy, busy_between
from therapy_scheduler.kit.intervals import subtract
from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.schedule.availability import load_calendars

SEARCH_DAYS = 14
STEP = timedelta(minutes=15)


async def find_alternatives(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    around: datetime,
    duration: timedelta,
    now: datetime,
    buffer_minutes: int,
    location_id: uuid.UUID | None,
    location_type: str | None,
    exclude_session_id: uuid.UUID | None = None,
    limit: int = 3,
) -> list[dict[str, str]]:
    """Free `[start, end)` ranges of `duration`, closest to `around` first."""
    lower = max(around - timedelta(days=1), now)
    upper = around + timedelta(days=SEARCH_DAYS)
    calendars = await load_calendars(
        conn,
        organization_id=organization_id,
        therapist_ids=[therapist_id],
        start=lower,
        end=upper,
        now=now,
        with_busy=False,
    )
    calendar = calendars.get(therapist_id)
    if calendar is None:
        return []
    buffer = timedelta(minutes=buffer_minutes)
    busy = await busy_between(
        conn,
        therapist_id=therapist_id,
        client_id=client_id,
        lower=lower - buffer - timedelta(days=1),
        upper=upper + buffer + timedelta(days=1),
        now=now,
        exclude_session_id=exclude_session_id,
    )
    tz = calendar.zone
    first_day = lower.astimezone(tz).date()
    last_day = upper.astimezone(tz).date()
    candidates: list[datetime] = []
    day = first_day
    while day <= last_day:
        free = subtract(calendar.windows(day), [(b.start, b.end) for b in busy])
        for start, end in free:
            cursor = _next_quarter(max(start, now + timedelta(minutes=1)))
            while cursor + duration <= end:
                if not _too_close(
                    cursor,
                    cursor + duration,
                    busy,
                    therapist_id,
                    buffer,
                    location_id,
                    location_type,
                ):
                    candidates.append(cursor)
                cursor += STEP
        day += timedelta(days=1)
    candidates.sort(key=lambda c: (abs((c - around).total_seconds()), c))
    chosen: list[datetime] = []
    for c in candidates:
        if all(c + duration <= other or other + duration <= c for other in chosen):
            chosen.append(c)
            if len(chosen) == limit:
                break
    return [{"start_time": iso_utc(c), "end_time": iso_utc(c + duration)} for c in sorted(chosen)]


def _next_quarter(instant: datetime) -> datetime:
    base = instant.replace(second=0, microsecond=0)
    if base < instant:
        base += timedelta(minutes=1)
    return base + timedelta(minutes=(-base.minute) % 15)


def _too_close(
    start: datetime,
    end: datetime,
    busy: list[Busy],
    therapist_id: uuid.UUID,
    buffer: timedelta,
    location_id: uuid.UUID | None,
    location_type: str | None,
) -> bool:
    if buffer <= timedelta(0):
        return False
    for b in busy:
        if b.therapist_id != therapist_id:
            continue
        if not (start - buffer < b.end and b.start < end + buffer):
            continue
        if b.location_id is not None and location_id is not None:
            if b.location_id != location_id:
                return True
        elif b.location_type != location_type:
            return True
    return False
