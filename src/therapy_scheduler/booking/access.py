"""Showing and releasing holds (docs/BOOKING.md): who may see a hold, its effective status, its release."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.errors import HoldAlreadyConfirmed, HoldNotFound
from therapy_scheduler.booking.rules.locks import lock_hold_people
from therapy_scheduler.booking.rules.supervision import Alone, alone_warning, left_alone_by_release
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc


def hold_visible(principal: Principal, hold: Any) -> bool:
    """Admins and schedulers see every hold of their organization; a therapist only their own."""
    if hold is None or hold.organization_id != principal.organization_id:
        return False
    if principal.can(Capability.BOOK_FOR_ANY_THERAPIST):
        return True
    return principal.therapist_id is not None and hold.therapist_id == principal.therapist_id


def effective_status(hold: Any, now: datetime) -> str:
    if hold.status == "active" and hold.expires_at <= now:
        return "expired"
    return str(hold.status)


def hold_view(hold: Any, occurrences: list[Any], now: datetime) -> dict[str, Any]:
    return ok(
        hold_key=hold.hold_key,
        status=effective_status(hold, now),
        expires_at=iso_utc(hold.expires_at),
        occurrences=[
            {"start_time": iso_utc(o.start_time), "end_time": iso_utc(o.end_time)}
            for o in occurrences
        ],
        therapist_id=str(hold.therapist_id),
        client_id=str(hold.client_id),
        service_code=hold.service_code,
        location_id=str(hold.location_id) if hold.location_id else None,
        location_type=hold.location_type,
        time_zone=hold.time_zone,
        session_id=str(hold.reschedule_session_id) if hold.reschedule_session_id else None,
        series_id=str(hold.series_id) if hold.series_id else None,
        metadata=hold.hold_metadata,
        created_at=iso_utc(hold.created_at),
    )


async def get_hold(
    *, db: Database, principal: Principal, hold_key: str, now: datetime
) -> dict[str, Any]:
    """A hold the caller may see, with its occurrences and effective status."""
    async with db.read() as conn:
        hold = await queries.hold_by_key(conn, principal.organization_id, hold_key)
        if not hold_visible(principal, hold):
            raise HoldNotFound()
        assert hold is not None
        occurrences = await queries.hold_occurrences(conn, hold.id)
    return hold_view(hold, occurrences, now)


async def release_hold(
    *,
    db: Database,
    principal: Principal,
    hold_key: str,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Give the slots (and reserved units) back. Releasing twice is harmless; a confirmed hold cannot
    be released (cancel its sessions instead). `warnings` names the supervisions the released slots
    leave standing alone."""
    freed: list[Any] = []
    alone = Alone()
    async with db.write() as conn:
        # As every booking: the client's lock first (taken by the statement that finds the
        # hold's client), then the row (no lock cycles). Under it no supervision of the client is
        # held or confirmed while this one is judged below.
        await lock_hold_people(conn, principal.organization_id, hold_key, therapist=False)
        hold = await queries.hold_by_key(conn, principal.organization_id, hold_key, for_update=True)
        if not hold_visible(principal, hold):
            raise HoldNotFound()
        assert hold is not None
        if hold.status == "confirmed":
            raise HoldAlreadyConfirmed(
                "This hold was confirmed; cancel its sessions instead",
                details={"status": "confirmed"},
            )
        already = hold.status == "released"
        if not already:
            previous = effective_status(hold, now)
            occurrences = await queries.hold_occurrences(conn, hold.id)
            if previous == "active":
                # A live hold's slots go to the waitlist after COMMIT (docs/WAITLIST.md).
                freed = [
                    await freed_slots.record_freed(
                        conn,
                        organization_id=hold.organization_id,
                        therapist_id=hold.therapist_id,
                        start=o.start_time,
                        end=o.end_time,
                        cause="release",
                        now=now,
                    )
                    for o in occurrences
                    if o.end_time > now
                ]
            await queries.close_hold(conn, hold.id, status="released", now=now)
            # A supervision held or booked inside a released slot stays: the caller is told
            # (docs/BOOKING.md "Supervision overlap").
            alone = await left_alone_by_release(
                conn, client_id=hold.client_id, released=occurrences, now=now
            )
            await audit.record(
                conn,
                organization_id=principal.organization_id,
                actor_user_id=principal.user_id,
                action="hold.release",
                entity_type="hold",
                entity_id=hold.id,
                request_id=request_id,
                details={"previous_status": previous},
                client_ids=[hold.client_id],
            )
            await outbox.emit_hold_event(
                conn,
                organization_id=principal.organization_id,
                event_type="hold.released",
                hold_id=hold.id,
                therapist_id=hold.therapist_id,
                client_id=hold.client_id,
            )
        response = ok(
            hold_key=hold_key,
            released=True,
            already_released=already,
            warnings=[alone_warning(alone)] if alone else [],
        )
        if finalize is not None:
            await finalize(conn, response)
    freed_slots.kick(db, freed)
    return response
