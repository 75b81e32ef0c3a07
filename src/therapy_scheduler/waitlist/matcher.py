"""Matching freed slots to the waitlist (docs/WAITLIST.md).

A freed range of one therapist is offered to the best waiting entry that fits it: the entry accepts
the therapist (named, or on the client's caseload when none is named), one of its weekly windows and
its dates hold a sub-range of its duration, and the booking rules pass. The rules are not repeated
here: the offer IS a hold (`booking.hold.create_hold`, with the organization's offer TTL), so every
rule of `check_slots` applies, and the hold reserves the slot and the units until the offer is
accepted, declined or expires. The offer row, the hold and the outbox row's "processed" mark are
written in one transaction; the partial unique index keeps one open offer per entry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries as booking_queries
from therapy_scheduler.booking.hold import create_hold
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.parties import require_people
from therapy_scheduler.booking.rules.apply import Booking, Refused, check_slots
from therapy_scheduler.booking.schemas import HoldBody, HoldSessionIn
from therapy_scheduler.errors import AppError
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.waitlist import queries

log = logging.getLogger("therapy_scheduler.waitlist")

STEP = timedelta(minutes=15)
# Bounds on the work one freed slot may cause (each try is one booking transaction).
TRIES_PER_ENTRY = 4
MAX_ATTEMPTS = 5  # failed processings of one outbox row before it is set aside (logged)
_ACTOR_NAMESPACE = uuid.UUID("5a0e2a52-39a4-4b8e-9a55-2f2b8f4f3c11")


def waitlist_actor(organization_id: uuid.UUID) -> uuid.UUID:
    """The user id the offers' holds are made by (and audited under): one per organization, no
    login; its holds do not count against any person's hold cap."""
    return uuid.uuid5(_ACTOR_NAMESPACE, f"waitlist:{organization_id}")


def offer_principal(organization: Any) -> Principal:
    settings = dict(organization.settings or {})
    settings["max_active_holds_staff"] = 10_000  # the offers are bounded by the entries, not a cap
    return Principal(
        user_id=waitlist_actor(organization.id),
        organization_id=organization.id,
        role="scheduler",
        therapist_id=None,
        organization_time_zone=organization.time_zone,
        raw_settings=settings,
    )


def therapist_fits(entry: Any, therapist_id: uuid.UUID) -> bool:
    if entry.therapist_ids:
        return str(therapist_id) in entry.therapist_ids
    return bool(entry.on_caseload)


def _minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


def fitting_starts(entry: Any, start: datetime, end: datetime, now: datetime) -> Iterator[datetime]:
    """Starts (every 15 minutes from `start`) of the entry's duration inside [start, end) that lie in
    one of its weekly windows and within its dates, in its own time zone, and not in the past."""
    duration = timedelta(minutes=entry.duration_minutes)
    tz = ZoneInfo(entry.time_zone)
    at = start
    while at + duration <= end:
        if at > now:
            local_start = at.astimezone(tz)
            local_end = (at + duration).astimezone(tz)
            day = local_start.date()
            first = _minute_of_day(local_start)
            last = _minute_of_day(local_end)
            if local_end.date() != day:
                last = 24 * 60 if last == 0 and local_end.date() == day + timedelta(days=1) else -1
            in_dates = entry.earliest_date <= day and (
                entry.latest_date is None or day <= entry.latest_date
            )
            if in_dates and any(
                w["weekday"] == local_start.weekday()
                and _clock(w["start"]) <= first
                and last <= _clock(w["end"])
                and first < last
                for w in entry.windows
            ):
                yield at
        at += STEP


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class _AlreadyProcessed(Exception):
    """Another process matched this outbox row first: roll this offer back."""


async def offer_slot(
    db: Database, freed: Any, *, metrics: Metrics | None = None
) -> uuid.UUID | None:
    """Offer the freed range to the best entry that fits it (one hold), or to nobody."""
    async with db.read() as conn:
        organization = await queries.organization(conn, freed.organization_id)
        if organization is None:
            return None
        entries = await queries.candidates(
            conn, freed.organization_id, freed.therapist_id, freed.start_time, freed.end_time
        )
    principal = offer_principal(organization)
    ttl = timedelta(minutes=principal.settings.waitlist_offer_minutes)
    for entry in entries:
        if not therapist_fits(entry, freed.therapist_id):
            continue
        starts = fitting_starts(entry, freed.start_time, freed.end_time, utcnow())
        for _, start in zip(range(TRIES_PER_ENTRY), starts, strict=False):
            try:
                offer_id = await _hold_for(db, principal, entry, freed, start, ttl)
            except _AlreadyProcessed:
                return None
            except IntegrityError:
                break  # the entry got an offer concurrently: the next entry
            except AppError:
                continue  # a booking rule refused this start: try the next one
            if metrics is not None:
                metrics.waitlist_offers.labels("created").inc()
            return offer_id
    return None


async def _hold_for(
    db: Database,
    principal: Principal,
    entry: Any,
    freed: Any,
    start: datetime,
    ttl: timedelta,
) -> uuid.UUID:
    offer_id = uuid.uuid4()
    end = start + timedelta(minutes=entry.duration_minutes)

    async def record_offer(conn: AsyncConnection, response: dict[str, Any]) -> None:
        hold = await booking_queries.hold_by_key(
            conn, principal.organization_id, response["hold_key"]
        )
        assert hold is not None
        now = utcnow()
        await queries.insert_offer(
            conn,
            {
                "id": offer_id,
                "organization_id": principal.organization_id,
                "entry_id": entry.id,
                "hold_id": hold.id,
                "hold_key": hold.hold_key,
                "therapist_id": freed.therapist_id,
                "client_id": entry.client_id,
                "start_time": start,
                "end_time": end,
                "expires_at": hold.expires_at,
                "status": "open",
                "freed_slot_id": freed.id,
                "created_at": now,
            },
        )
        if not await queries.mark_processed(conn, freed.id, now=now, offer_id=offer_id):
            raise _AlreadyProcessed()
        await outbox.emit_offer_event(
            conn,
            organization_id=principal.organization_id,
            event_type="waitlist.offer_created",
            offer_id=offer_id,
            entry_id=entry.id,
            therapist_id=freed.therapist_id,
            client_id=entry.client_id,
            hold_id=hold.id,
        )

    await create_hold(
        db=db,
        principal=principal,
        body=HoldBody(
            session=HoldSessionIn(
                therapist_id=freed.therapist_id,
                client_id=entry.client_id,
                start_time=iso_utc(start),
                end_time=iso_utc(end),
                location_type=entry.location_type,
                service_code=entry.service_code,
            ),
            time_zone=entry.time_zone,
            metadata={"waitlist_offer_id": str(offer_id)},
        ),
        now=utcnow(),
        request_id=None,
        finalize=record_offer,
        expires_in=ttl,
        alternatives=False,
    )
    return offer_id


async def process_freed(
    db: Database, ids: Sequence[uuid.UUID] | None, *, metrics: Metrics | None = None
) -> uuid.UUID | None:
    """Match outbox rows (`ids`, or every pending one); returns the first offer made. A row that
    fails is retried by the periodic job, and set aside after MAX_ATTEMPTS failures."""
    if ids is None:
        async with db.read() as conn:
            ids = await queries.pending_freed(conn, limit=200)
    first: uuid.UUID | None = None
    for freed_id in ids:
        try:
            offer_id = await _process_one(db, freed_id, metrics)
        except Exception as exc:  # retried by the job; only the kind is logged (no PHI)
            log.warning("matching a freed slot failed: %s", type(exc).__name__)
            async with db.write() as conn:
                if await queries.count_attempt(conn, freed_id) >= MAX_ATTEMPTS:
                    await queries.mark_processed(conn, freed_id, now=utcnow(), offer_id=None)
            continue
        first = first or offer_id
    return first


async def _process_one(
    db: Database, freed_id: uuid.UUID, metrics: Metrics | None
) -> uuid.UUID | None:
    async with db.read() as conn:
        freed = await queries.freed_slot(conn, freed_id)
        if freed is None:
            return None
        if freed.processed_at is not None:
            return freed.offer_id  # type: ignore[no-any-return]
        waiting = await queries.anyone_waiting(conn, freed.organization_id)
    offer_id = None
    if waiting and freed.end_time > utcnow():
        offer_id = await offer_slot(db, freed, metrics=metrics)
    if offer_id is None:
        async with db.write() as conn:
            await queries.mark_processed(conn, freed_id, now=utcnow(), offer_id=None)
    return offer_id


class _DryRun(Exception):
    """Roll back a transaction that only checked the booking rules."""


async def passes_rules(
    db: Database, principal: Principal, entry: Any, therapist_id: uuid.UUID, start: datetime
) -> bool:
    """Whether a hold of this entry at `start` would pass every booking rule now (nothing is kept)."""
    end = start + timedelta(minutes=entry.duration_minutes)
    try:
        async with db.write() as conn:
            people = await require_people(conn, principal, therapist_id, entry.client_id, lock=True)
            await check_slots(
                conn,
                principal,
                Booking(
                    therapist_id=therapist_id,
                    client_id=entry.client_id,
                    occurrences=[Occurrence(start, end)],
                    service_code=entry.service_code,
                    location_id=None,
                    location_type=entry.location_type,
                    therapist_time_zone=people.time_zone,
                    time_zone=entry.time_zone,
                    locked=people.locked,
                ),
                utcnow(),
            )
            raise _DryRun()
    except _DryRun:
        return True
    except (Refused, AppError):
        return False
