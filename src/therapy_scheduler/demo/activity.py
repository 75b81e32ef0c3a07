"""Life in the demo clinic after import: what a week of real use leaves behind, made through the real
booking services so that every part of the product has something to show.

* a cancellation record (reason, policy, late or not, units released) for every imported cancelled
  session that has none — some of them late (less than the standard policy's 24 hours' notice);
* recurring series booked with `POST /sessions/hold` + `recurrence` and confirmed (the hold keeps
  the RRULE, so calendar feeds show it), their first slots found by the suggestion engine;
* one occurrence of the first series rescheduled (the series is kept, the session moved);
* the rest of the second series cancelled (`scope: following`);
* late cancellations under the `strict` policy (units kept) of sessions starting in the next two days;
* supervision: a BCBA's 30-minute 97155 inside a few RBTs' 97153 sessions of the coming days
  (docs/BOOKING.md "Supervision overlap"), so the board shows the overlap.
* a few clients on the waitlist (demo/waitlist.py), so that a cancellation on the board shows an offer.

Runs once per database (skipped when the organization already has a series); deterministic
for a given seed and day apart from the ids the services generate.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking.cancel import cancel_session
from therapy_scheduler.booking.confirm import confirm_hold
from therapy_scheduler.booking.hold import create_hold
from therapy_scheduler.booking.reschedule import reschedule
from therapy_scheduler.booking.schemas import (
    CancelBody,
    ConfirmBody,
    ConfirmSessionIn,
    HoldBody,
    HoldSessionIn,
    RecurrenceIn,
    RescheduleBody,
    SuggestBody,
)
from therapy_scheduler.booking.suggest import suggest
from therapy_scheduler.demo import queries
from therapy_scheduler.demo.waitlist import add_waitlist
from therapy_scheduler.domain.vocab import CANCELLATION_REASONS
from therapy_scheduler.errors import AppError
from therapy_scheduler.infra import changes
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow

SERIES = 3
SERIES_WEEKS = 6
CLIENT_REASONS = sorted(k for k, v in CANCELLATION_REASONS.items() if v.attributed_to == "client")


async def add_activity(
    db: Database, *, organization_id: uuid.UUID, scheduler_email: str, seed: int = 7
) -> dict[str, int]:
    """Add the demo's lifecycle history; returns what was added, by kind."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    counts = {"cancellation records": await _cancellation_records(db, organization_id, rng)}
    principal = await _principal(db, organization_id, scheduler_email)
    if principal is None or await _already_done(db, organization_id):
        return counts
    now = utcnow()
    series = await _book_series(db, principal, now)
    counts["recurring series"] = len(series)
    counts["rescheduled"] = 0
    if series:
        counts["rescheduled"] = await _reschedule_one(db, principal, series[0], now)
    counts["series cancelled from an occurrence"] = 0
    if len(series) > 1:
        await cancel_session(
            db=db,
            principal=principal,
            body=CancelBody(
                session_id=series[1][3], reason="client_schedule_conflict", scope="following"
            ),
            now=now,
            request_id="demo",
        )
        counts["series cancelled from an occurrence"] = 1
    counts["late cancellations"] = await _late_cancellations(db, principal, now, rng)
    counts["supervision sessions"] = await _supervision(db, principal, now)
    # Last, so that the cancellations above do not use the entries up (docs/WAITLIST.md).
    counts["waitlist entries"] = await add_waitlist(db, principal, now)
    return counts


async def _principal(db: Database, organization_id: uuid.UUID, email: str) -> Principal | None:
    async with db.read() as conn:
        row = await queries.user_by_email(conn, organization_id=organization_id, email=email)
    if row is None:
        return None
    return Principal(
        user_id=row.id,
        organization_id=organization_id,
        role=row.role,
        therapist_id=None,
        organization_time_zone=row.time_zone,
        raw_settings=row.settings or {},
    )


async def _already_done(db: Database, organization_id: uuid.UUID) -> bool:
    async with db.read() as conn:
        return await queries.has_series(conn, organization_id=organization_id)


async def _cancellation_records(
    db: Database, organization_id: uuid.UUID, rng: random.Random
) -> int:
    """Imported cancelled sessions get the record a real cancellation would have left."""
    async with db.write() as conn:
        changes.touch(conn, organization_id)
        rows = await queries.unrecorded_cancellations(conn, organization_id=organization_id)
        records: list[queries.CancellationRecord] = []
        for r in rows:
            notice_hours = rng.choice([2, 6, 12, 20, 30, 48, 72, 120])
            late = notice_hours < 24
            records.append(
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization_id,
                    "session_id": r.id,
                    "cancelled_by": None,
                    "cancelled_at": r.start_time - timedelta(hours=notice_hours),
                    "reason": rng.choice(CLIENT_REASONS),
                    "notes": None,
                    "policy": "standard",
                    "late_cancellation": late,
                    "units_released": r.units,  # the standard policy releases units even when late
                }
            )
        if records:
            await queries.insert_cancellations(conn, records=records)
    return len(records)


async def _pairs(
    db: Database, organization_id: uuid.UUID, first_day: date, last_day: date
) -> list[tuple[Any, Any, str]]:
    """(therapist, client, time zone) pairs on a caseload, the client holding an approved
    authorization from `first_day` to `last_day` (a whole series), in a stable order."""
    async with db.read() as conn:
        rows = await queries.caseload_pairs(
            conn, organization_id=organization_id, first_day=first_day, last_day=last_day
        )
    seen: set[Any] = set()
    out = []
    for r in rows:
        if r.id in seen:
            continue
        seen.add(r.id)
        out.append((r.id, r.client_id, r.time_zone))
    return out


async def _book_series(db: Database, principal: Principal, now: datetime) -> list[list[uuid.UUID]]:
    """Weekly series of SERIES_WEEKS one-hour sessions, each at a slot the engine found free in the
    first week; a candidate whose later weeks are taken is refused by the hold and the next is tried."""
    booked: list[list[uuid.UUID]] = []
    first_day = (now + timedelta(days=7)).date()
    last_day = first_day + timedelta(weeks=SERIES_WEEKS)
    for therapist_id, client_id, tz in await _pairs(
        db, principal.organization_id, first_day, last_day
    ):
        if len(booked) == SERIES:
            break
        found = await suggest(
            db=db,
            principal=principal,
            body=SuggestBody(
                therapist_id=therapist_id,
                client_id=client_id,
                duration_minutes=60,
                time_zone=tz,
                start_date=first_day,
                end_date=first_day + timedelta(days=6),
                limit=8,
            ),
            now=now,
        )
        for slot in found["slots"]:
            try:
                held = await create_hold(
                    db=db,
                    principal=principal,
                    body=HoldBody(
                        session=HoldSessionIn(
                            therapist_id=therapist_id,
                            client_id=client_id,
                            start_time=slot["local_start_time"],
                            service_code="97153",
                        ),
                        duration_minutes=60,
                        time_zone=tz,
                        recurrence=RecurrenceIn(rrule=f"FREQ=WEEKLY;COUNT={SERIES_WEEKS}"),
                        metadata={"source": "demo"},
                    ),
                    now=now,
                    request_id="demo",
                )
            except AppError:
                continue
            confirmed = await confirm_hold(
                db=db,
                principal=principal,
                body=ConfirmBody(
                    hold_key=held["hold_key"],
                    session=ConfirmSessionIn(
                        start_time=held["occurrences"][0]["start_time"],
                        end_time=held["occurrences"][0]["end_time"],
                    ),
                ),
                now=now,
                request_id="demo",
            )
            booked.append([uuid.UUID(s["id"]) for s in confirmed["occurrences"]])
            break
    return booked


async def _reschedule_one(
    db: Database, principal: Principal, series: list[uuid.UUID], now: datetime
) -> int:
    """Move the series' second occurrence to another free hour of the same week."""
    async with db.read() as conn:
        moving = await queries.session_people(conn, session_id=series[1])
        tz = await queries.therapist_time_zone(conn, therapist_id=moving.therapist_id)
    day = moving.start_time.date()
    found = await suggest(
        db=db,
        principal=principal,
        body=SuggestBody(
            therapist_id=moving.therapist_id,
            client_id=moving.client_id,
            duration_minutes=60,
            time_zone=tz,
            start_date=day + timedelta(days=1),
            end_date=day + timedelta(days=4),
            limit=5,
            session_id=moving.id,
        ),
        now=now,
    )
    for slot in found["slots"]:
        try:
            await reschedule(
                db=db,
                principal=principal,
                session_id=moving.id,
                body=RescheduleBody(start_time=slot["start_time"], time_zone=tz),
                now=now,
                request_id="demo",
            )
        except AppError:
            continue
        return 1
    return 0


async def _late_cancellations(
    db: Database, principal: Principal, now: datetime, rng: random.Random
) -> int:
    """Two sessions starting within the strict policy's 48 hours: late, units kept."""
    async with db.read() as conn:
        soon = await queries.single_sessions_starting(
            conn,
            organization_id=principal.organization_id,
            after=now + timedelta(hours=2),
            before=now + timedelta(hours=46),
            limit=20,
        )
    chosen = rng.sample(list(soon), min(2, len(soon)))
    for session_id in sorted(chosen):
        await cancel_session(
            db=db,
            principal=principal,
            body=CancelBody(
                session_id=session_id,
                reason="client_illness",
                notes="Parent called in the morning",
                cancellation_policy="strict",
            ),
            now=now,
            request_id="demo",
        )
    return len(chosen)


SUPERVISIONS = 4


async def _supervision(db: Database, principal: Principal, now: datetime) -> int:
    """A BCBA's 97155, 30 minutes from the half hour after the start of an RBT's 97153 of the coming
    week (at least an hour long), for the first SUPERVISIONS sessions some BCBA is free for."""
    async with db.read() as conn:
        sessions = await queries.supervisable_sessions(
            conn,
            organization_id=principal.organization_id,
            after=now + timedelta(days=1),
            before=now + timedelta(days=8),
            limit=SUPERVISIONS,
        )
        bcbas = await queries.active_bcbas(conn, organization_id=principal.organization_id)
    booked = 0
    for s in sessions:
        if booked == SUPERVISIONS:
            break
        start = s.start_time + timedelta(minutes=30)
        if s.end_time - start < timedelta(minutes=30):
            continue
        for bcba_id, tz in bcbas:
            try:
                held = await create_hold(
                    db=db,
                    principal=principal,
                    body=HoldBody(
                        session=HoldSessionIn(
                            therapist_id=bcba_id,
                            client_id=s.client_id,
                            start_time=start.isoformat(),
                            end_time=(start + timedelta(minutes=30)).isoformat(),
                            service_code="97155",
                            location_id=s.location_id,
                            location_type=s.location_type,
                        ),
                        time_zone=tz,
                        metadata={"source": "demo"},
                    ),
                    now=now,
                    request_id="demo",
                )
            except AppError:
                continue
            await confirm_hold(
                db=db,
                principal=principal,
                body=ConfirmBody(
                    hold_key=held["hold_key"],
                    session=ConfirmSessionIn(
                        start_time=held["occurrences"][0]["start_time"],
                        end_time=held["occurrences"][0]["end_time"],
                    ),
                ),
                now=now,
                request_id="demo",
            )
            booked += 1
            break
    return booked
