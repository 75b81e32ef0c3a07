"""Candidate bookings for the booking scenario: future free slots found with the service's own
calendar code (weekly hours minus time off, sessions and holds), each paired with a free client of the
therapist's caseload who holds an approved authorization for that day.

One candidate in twenty is followed by a rival for the same therapist and time with another client,
so that concurrent clients race for the slot and the loser gets a 409.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from therapy_scheduler.calendar.availability import load_calendars
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import iso_utc

LENGTH = timedelta(minutes=60)
MARGIN = timedelta(minutes=15)  # the organization's buffer, kept on both sides
HORIZON_DAYS = 42


@dataclass(frozen=True)
class Slot:
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    start_at: datetime
    time_zone: str
    service_code: str

    @property
    def start(self) -> str:
        return iso_utc(self.start_at)

    @property
    def end(self) -> str:
        return iso_utc(self.start_at + LENGTH)

    def hold_body(self) -> dict[str, Any]:
        return {
            "session": {
                "therapist_id": str(self.therapist_id),
                "client_id": str(self.client_id),
                "start_time": self.start,
                "end_time": self.end,
                "service_code": self.service_code,
                "location_type": "clinic",
            },
            "time_zone": self.time_zone,
        }


def _quarter_after(instant: datetime) -> datetime:
    minutes = (-instant.minute) % 15
    return (instant + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


async def find_slots(
    url: str, organization_id: uuid.UUID, wanted: int, rng: random.Random
) -> list[Slot]:
    db = Database.from_settings(Settings(database_url=url))
    now = datetime.now(UTC)
    first = now.date() + timedelta(days=1)
    last = first + timedelta(days=HORIZON_DAYS)
    lo = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    try:
        async with db.read() as conn:
            therapists = {
                r.id: r.credential
                for r in await conn.execute(
                    text(
                        "SELECT id, credential FROM therapists WHERE organization_id = :o "
                        "AND status = 'active' AND archived_at IS NULL"
                    ),
                    {"o": organization_id},
                )
            }
            caseload: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
            for r in await conn.execute(
                text(
                    "SELECT k.therapist_id, k.client_id FROM caseloads k "
                    "JOIN clients c ON c.id = k.client_id "
                    "WHERE k.organization_id = :o AND c.status = 'active' "
                    "AND c.archived_at IS NULL ORDER BY 1, 2"
                ),
                {"o": organization_id},
            ):
                caseload[r.therapist_id].append(r.client_id)
            covered: dict[uuid.UUID, list[tuple[date, date]]] = defaultdict(list)
            for r in await conn.execute(
                text(
                    "SELECT client_id, start_date, end_date FROM authorizations "
                    "WHERE organization_id = :o AND status = 'approved' AND end_date >= :f"
                ),
                {"o": organization_id, "f": first},
            ):
                covered[r.client_id].append((r.start_date, r.end_date))
            busy: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
            for r in await conn.execute(
                text(
                    "SELECT client_id, start_time, end_time FROM sessions "
                    "WHERE organization_id = :o AND status <> 'cancelled' "
                    "AND start_time < :hi AND end_time > :lo"
                ),
                {"o": organization_id, "lo": lo, "hi": hi},
            ):
                busy[r.client_id].append(
                    (_aware(r.start_time) - MARGIN, _aware(r.end_time) + MARGIN)
                )
            ids = sorted(t for t in therapists if caseload.get(t))
            calendars = await load_calendars(
                conn, organization_id=organization_id, therapist_ids=ids, start=lo, end=hi, now=now
            )
    finally:
        await db.dispose()

    def free_client(therapist: uuid.UUID, start: datetime, day: date) -> uuid.UUID | None:
        end = start + LENGTH
        for client in rng.sample(caseload[therapist], len(caseload[therapist])):
            if not any(a <= day <= b for a, b in covered[client]):
                continue
            if all(not (s < end and start < e) for s, e in busy[client]):
                return client
        return None

    slots: list[Slot] = []
    day = first
    while day <= last and len(slots) < wanted:
        for therapist in rng.sample(ids, len(ids)):
            calendar = calendars[therapist]
            code = "97155" if therapists[therapist] == "BCBA" else "97153"
            for free_start, free_end in calendar.free_slots(day):
                start = _quarter_after(max(free_start, now + timedelta(hours=1)) + MARGIN)
                while start + LENGTH + MARGIN <= free_end:
                    client = free_client(therapist, start, day)
                    if client is not None:
                        busy[client].append((start - MARGIN, start + LENGTH + MARGIN))
                        slots.append(Slot(therapist, client, start, calendar.time_zone, code))
                        if len(slots) % 20 == 0:
                            rival = free_client(therapist, start, day)
                            if rival is not None:
                                slots.append(
                                    Slot(therapist, rival, start, calendar.time_zone, code)
                                )
                    start += LENGTH + MARGIN
        day += timedelta(days=1)
    return slots[:wanted]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
