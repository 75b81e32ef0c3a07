"""Offers after they are made (docs/WAITLIST.md): accept (the hold is confirmed into a session),
decline (the hold is released and the slot goes to the next entry), expiry (the periodic job), in
each case exactly one outcome: the offer row moves from `open` only once, in the same transaction as
the hold's change."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries as booking_queries
from therapy_scheduler.booking.access import release_hold
from therapy_scheduler.booking.confirm import confirm_hold
from therapy_scheduler.booking.errors import HoldExpired, HoldReleased
from therapy_scheduler.booking.rules.locks import lock_people
from therapy_scheduler.booking.schemas import ConfirmBody, ConfirmSessionIn
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.errors import NotFound
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.infra.jobs import try_lock_job
from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.waitlist import queries
from therapy_scheduler.waitlist.errors import OfferExpired, OfferNotOpen
from therapy_scheduler.waitlist.matcher import process_freed, waitlist_actor

log = logging.getLogger("therapy_scheduler.waitlist")
BATCH = 100
KEEP_MATCHED = timedelta(days=7)  # matched outbox rows are kept a week, for support questions


def offer_json(offer: Any) -> dict[str, Any]:
    return {
        "id": str(offer.id),
        "entry_id": str(offer.entry_id),
        "therapist_id": str(offer.therapist_id),
        "client_id": str(offer.client_id),
        "start_time": iso_utc(offer.start_time),
        "end_time": iso_utc(offer.end_time),
        "expires_at": iso_utc(offer.expires_at),
        "status": offer.status,
        "hold_key": offer.hold_key,
        "session_id": str(offer.session_id) if offer.session_id else None,
        "created_at": iso_utc(offer.created_at),
    }


def _require(principal: Principal) -> None:
    principal.require(
        Capability.BOOK_FOR_ANY_THERAPIST, "Only admins and schedulers manage the waitlist"
    )


async def _open_offer(db: Database, principal: Principal, offer_id: uuid.UUID) -> Any:
    async with db.read() as conn:
        offer = await queries.offer(conn, principal.organization_id, offer_id)
    if offer is None:
        raise NotFound("Offer not found", details={"field": "offer_id"})
    if offer.status == "expired":
        raise OfferExpired(
            "This offer has expired", details={"status": "expired", "offer_id": str(offer.id)}
        )
    if offer.status != "open":
        raise OfferNotOpen(
            f"This offer is {offer.status}",
            details={"status": offer.status, "offer_id": str(offer.id)},
        )
    return offer


def _not_open(offer: Any) -> OfferNotOpen:
    return OfferNotOpen("This offer is no longer open", details={"offer_id": str(offer.id)})


async def accept_offer(
    *,
    db: Database,
    principal: Principal,
    offer_id: uuid.UUID,
    now: datetime,
    request_id: str | None,
    metrics: Metrics | None = None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Confirm the offer's hold into a scheduled session and mark the entry booked (one transaction,
    which also stores the answer for its Idempotency-Key through `finalize`)."""
    _require(principal)
    offer = await _open_offer(db, principal, offer_id)
    answer: dict[str, Any] = {}

    async def accepted(conn: AsyncConnection, response: dict[str, Any]) -> None:
        session_id = uuid.UUID(response["session"]["id"])
        if not await queries.close_offer(
            conn, offer.id, status="accepted", now=now, session_id=session_id
        ):
            raise _not_open(offer)
        await queries.update_entry(conn, offer.entry_id, {"status": "booked", "updated_at": now})
        await outbox.emit_offer_event(
            conn,
            organization_id=principal.organization_id,
            event_type="waitlist.offer_accepted",
            offer_id=offer.id,
            entry_id=offer.entry_id,
            therapist_id=offer.therapist_id,
            client_id=offer.client_id,
            session_id=session_id,
        )
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="waitlist.offer.accept",
            entity_type="waitlist_offer",
            entity_id=offer.id,
            request_id=request_id,
            details={"entry_id": str(offer.entry_id), "session_id": str(session_id)},
            client_ids=[offer.client_id],
        )
        current = await queries.offer(conn, principal.organization_id, offer.id)
        answer.update(ok(offer=offer_json(current), session=response["session"]))
        if finalize is not None:
            await finalize(conn, answer)

    try:
        await confirm_hold(
            db=db,
            principal=principal,
            body=ConfirmBody(
                hold_key=offer.hold_key,
                session=ConfirmSessionIn(
                    start_time=iso_utc(offer.start_time), end_time=iso_utc(offer.end_time)
                ),
            ),
            now=now,
            request_id=request_id,
            finalize=accepted,
        )
    except HoldExpired as exc:
        raise OfferExpired("This offer has expired", details={"offer_id": str(offer.id)}) from exc
    except HoldReleased as exc:
        raise _not_open(offer) from exc
    if metrics is not None:
        metrics.waitlist_offers.labels("accepted").inc()
    return answer


async def decline_offer(
    *,
    db: Database,
    principal: Principal,
    offer_id: uuid.UUID,
    now: datetime,
    request_id: str | None,
    metrics: Metrics | None = None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Release the offer's hold; the freed slot goes to the next entry (the declining entry keeps
    waiting, and is not offered this therapist's overlapping time again). `finalize` stores the
    answer for its Idempotency-Key in the release's transaction."""
    _require(principal)
    offer = await _open_offer(db, principal, offer_id)
    answer: dict[str, Any] = {}

    async def declined(conn: AsyncConnection, _response: dict[str, Any]) -> None:
        if not await queries.close_offer(conn, offer.id, status="declined", now=now):
            raise _not_open(offer)
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="waitlist.offer.decline",
            entity_type="waitlist_offer",
            entity_id=offer.id,
            request_id=request_id,
            details={"entry_id": str(offer.entry_id)},
            client_ids=[offer.client_id],
        )
        current = await queries.offer(conn, principal.organization_id, offer.id)
        answer.update(ok(offer=offer_json(current)))
        if finalize is not None:
            await finalize(conn, answer)

    await release_hold(
        db=db,
        principal=principal,
        hold_key=offer.hold_key,
        now=now,
        request_id=request_id,
        finalize=declined,
    )
    if metrics is not None:
        metrics.waitlist_offers.labels("declined").inc()
    return answer


async def expire_lapsed(
    db: Database, now: datetime, metrics: Metrics | None = None
) -> list[uuid.UUID]:
    """Close the open offers whose hold has lapsed (expired, or released elsewhere); an offer whose
    hold this pass expires frees its slot for the next entry. Returns the outbox ids written."""
    async with db.read() as conn:
        lapsed = await queries.lapsed_offers(conn, now=now, limit=BATCH)
    freed: list[freed_slots.Recorded] = []
    for offer in lapsed:
        async with db.write() as conn:
            # The same locks, in the same order, as the confirm of its hold: an accept racing this
            # expiry runs wholly before or after it.
            await lock_people(
                conn, therapist_ids=[offer.therapist_id], client_ids=[offer.client_id]
            )
            hold = await booking_queries.hold_by_key(
                conn, offer.organization_id, offer.hold_key, for_update=True
            )
            if hold is not None and hold.status == "active" and hold.expires_at > now:
                continue  # still live (its hold was extended or the clock moved): not lapsed
            if not await queries.close_offer(conn, offer.id, status="expired", now=now):
                continue  # accepted or declined meanwhile
            if hold is not None and hold.status == "active":
                await booking_queries.expire_holds(conn, hold_ids=[hold.id])
                await outbox.emit_hold_event(
                    conn,
                    organization_id=offer.organization_id,
                    event_type="hold.expired",
                    hold_id=hold.id,
                    therapist_id=offer.therapist_id,
                    client_id=offer.client_id,
                )
                if offer.end_time > now:
                    freed.append(
                        await freed_slots.record_freed(
                            conn,
                            organization_id=offer.organization_id,
                            therapist_id=offer.therapist_id,
                            start=offer.start_time,
                            end=offer.end_time,
                            cause="offer_expired",
                            now=now,
                        )
                    )
            await outbox.emit_offer_event(
                conn,
                organization_id=offer.organization_id,
                event_type="waitlist.offer_expired",
                offer_id=offer.id,
                entry_id=offer.entry_id,
                therapist_id=offer.therapist_id,
                client_id=offer.client_id,
            )
            await audit.record(
                conn,
                organization_id=offer.organization_id,
                actor_user_id=waitlist_actor(offer.organization_id),
                action="waitlist.offer.expire",
                entity_type="waitlist_offer",
                entity_id=offer.id,
                request_id=None,
                details={"entry_id": str(offer.entry_id)},
                client_ids=[offer.client_id],
            )
        if metrics is not None:
            metrics.waitlist_offers.labels("expired").inc()
    return [r.id for r in freed if r.written]


async def run_once(db: Database, metrics: Metrics | None, now: datetime) -> None:
    """One pass of the waitlist job: lapsed offers, then every pending freed slot. One process at a
    time on PostgreSQL (a job lock held by a transaction around the pass); SQLite runs it anyway
    (its writers are serialized, and the matcher's transactions are safe to race)."""
    if db.dialect != "postgresql":
        await _pass(db, metrics, now)
        return
    async with db.writer.connect() as conn, conn.begin():
        if not await try_lock_job(conn, "waitlist"):
            return
        await _pass(db, metrics, now)


async def _pass(db: Database, metrics: Metrics | None, now: datetime) -> None:
    await expire_lapsed(db, now, metrics)
    await process_freed(db, None, metrics=metrics)
    async with db.write() as conn:
        await queries.delete_matched_freed(conn, before=now - KEEP_MATCHED)


async def run_waitlist_loop(db: Database, metrics: Metrics, interval_seconds: float) -> None:
    """Run the waitlist job every `interval_seconds` until cancelled (like the hold purge)."""
    while True:
        try:
            await run_once(db, metrics, utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next pass retries; requests never depend on this
            log.warning("waitlist job failed: %s", type(exc).__name__)
        await asyncio.sleep(interval_seconds)
