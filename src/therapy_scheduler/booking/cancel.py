"""Cancelling sessions (docs/BOOKING.md): ownership re-checked, policy-driven late cancellation and units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import session_scope
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.errors import SessionNotCancellable
from therapy_scheduler.booking.occurrences import invalid
from therapy_scheduler.booking.rules.locks import lock_people
from therapy_scheduler.booking.rules.states import sources
from therapy_scheduler.booking.rules.supervision import Alone, alone_warning, left_alone
from therapy_scheduler.booking.schemas import CancelBody
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.domain.organization_settings import CancellationPolicy
from therapy_scheduler.domain.vocab import CANCELLATION_REASONS
from therapy_scheduler.errors import Forbidden, NotFound
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok

CANCELLABLE = sources("cancel")  # the state machine decides (booking/rules/states.py)


def notice_hours(now: datetime, start: datetime, tz: ZoneInfo) -> float:
    """Hours of notice as the organization's wall clock counts them (a DST change does not make a
    cancellation made at the same local time two days ahead more or less than 48 hours' notice)."""
    local_now = now.astimezone(tz).replace(tzinfo=None)
    local_start = start.astimezone(tz).replace(tzinfo=None)
    return (local_start - local_now).total_seconds() / 3600


def is_late(
    policy: CancellationPolicy, reason: str | None, now: datetime, start: datetime, tz: ZoneInfo
) -> bool:
    """Late = less notice than the policy's window, unless the reason's party is exempt."""
    vocab = CANCELLATION_REASONS.get(reason) if reason else None
    if vocab is not None and vocab.attributed_to in policy.exempt_attributions:
        return False
    return notice_hours(now, start, tz) < policy.notice_hours


async def cancel_session(
    *,
    db: Database,
    principal: Principal,
    body: CancelBody,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Cancel a session (or the rest of / all of its series) the caller owns; cancelling twice is a
    harmless no-op."""
    policy = principal.settings.policy(body.cancellation_policy)
    if policy is None:
        raise invalid(
            "cancellation_policy",
            f'unknown cancellation policy "{body.cancellation_policy}"',
        )
    owned_by_all = principal.can(Capability.BOOK_FOR_ANY_THERAPIST)
    freed: list[freed_slots.Recorded] = []
    async with db.write() as conn:
        visible = session_scope(principal)
        found = await queries.session_for_change(conn, body.session_id, visible)
        if found is None:
            raise NotFound("Session not found", details={"field": "session_id"})
        if not owned_by_all and found.therapist_id != principal.therapist_id:
            raise Forbidden("A therapist may cancel only their own sessions")
        # Same order as every booking: people locks first, then rows (no lock cycles).
        await lock_people(conn, therapist_ids=[found.therapist_id], client_ids=[found.client_id])
        target = await queries.session_for_change(conn, body.session_id, visible, for_update=True)
        assert target is not None
        if target.status == "cancelled":
            response = await _already_cancelled(conn, target.id)
        elif target.status not in CANCELLABLE:
            raise SessionNotCancellable(
                f"A {target.status} session cannot be cancelled",
                details={"session_id": str(target.id), "status": target.status},
            )
        else:
            members = [target]
            if body.scope != "occurrence" and target.series_id is not None:
                rows = await queries.series_members(
                    conn,
                    organization_id=principal.organization_id,
                    series_id=target.series_id,
                    from_start=target.start_time if body.scope == "following" else None,
                )
                members = [r for r in rows if r.status in CANCELLABLE]
                if not owned_by_all and any(
                    m.therapist_id != principal.therapist_id for m in members
                ):
                    raise Forbidden("A therapist may cancel only their own sessions")
            members.sort(key=lambda m: (m.start_time, m.id))
            outcomes = [
                await _cancel_one(conn, principal, m, body, policy, now, request_id)
                for m in members
            ]
            late = next(
                o["late_cancellation"] for o in outcomes if o["session_id"] == str(target.id)
            )
            # The freed slots go to the waitlist after COMMIT (docs/WAITLIST.md).
            freed = [
                await freed_slots.record_freed(
                    conn,
                    organization_id=principal.organization_id,
                    therapist_id=m.therapist_id,
                    start=m.start_time,
                    end=m.end_time,
                    cause="cancel",
                    now=now,
                )
                for m in members
                if m.end_time > now
            ]
            if not principal.can(Capability.SEE_AUTHORIZATIONS):
                for o in outcomes:
                    o.pop("units_released")
            # Supervision sessions inside a cancelled one stay booked: the scheduler is told.
            alone = Alone()
            for m in members:
                alone += await left_alone(conn, session=m, now=now)
            response = ok(
                session_id=str(target.id),
                status="cancelled",
                late_cancellation=late,
                cancelled_session_ids=[o["session_id"] for o in outcomes],
                already_cancelled=False,
                cancellation_policy=policy.name,
                scope=body.scope,
                cancellations=outcomes,
                warnings=[alone_warning(alone)] if alone else [],
                waitlist_offer_id=None,
            )
        if finalize is not None:
            await finalize(conn, response)
    # Committed. Whether the freed slot was offered (docs/DECISIONS.md, "The cancel and the
    # waitlist"): a bounded wait, and only when the organization has someone waiting.
    offer_id = await freed_slots.settle(db, freed)
    if offer_id is not None:
        response["waitlist_offer_id"] = str(offer_id)
    return response


async def _cancel_one(
    conn: AsyncConnection,
    principal: Principal,
    session: Any,
    body: CancelBody,
    policy: CancellationPolicy,
    now: datetime,
    request_id: str | None,
) -> dict[str, Any]:
    late = is_late(policy, body.reason, now, session.start_time, principal.zone)
    release = not late or policy.release_units_on_late_cancel
    released = session.units if (release and session.consumes_units) else 0
    await queries.set_session_status(
        conn,
        session_id=session.id,
        status="cancelled",
        consumes_units=bool(session.consumes_units and not release),
        updated_by=principal.user_id,
        updated_at=now,
    )
    await queries.insert_cancellation(
        conn,
        organization_id=principal.organization_id,
        session_id=session.id,
        cancelled_by=principal.user_id,
        cancelled_at=now,
        reason=body.reason,
        notes=body.notes,
        policy=policy.name,
        late_cancellation=late,
        units_released=released,
    )
    await audit.record(
        conn,
        organization_id=principal.organization_id,
        actor_user_id=principal.user_id,
        action="session.cancel",
        entity_type="session",
        entity_id=session.id,
        request_id=request_id,
        details={
            "reason": body.reason,
            "policy": policy.name,
            "scope": body.scope,
            "late_cancellation": late,
            "units_released": released,
            "previous_status": session.status,
        },
        client_ids=[session.client_id],
    )
    await outbox.emit_session_event(
        conn,
        organization_id=principal.organization_id,
        event_type="session.cancelled",
        session_id=session.id,
        therapist_id=session.therapist_id,
        client_id=session.client_id,
    )
    return {"session_id": str(session.id), "late_cancellation": late, "units_released": released}


async def _already_cancelled(conn: AsyncConnection, session_id: uuid.UUID) -> dict[str, Any]:
    last = await queries.last_cancellation(conn, session_id=session_id)
    return ok(
        session_id=str(session_id),
        status="cancelled",
        late_cancellation=bool(last.late_cancellation) if last else False,
        cancelled_session_ids=[],
        already_cancelled=True,
        cancellation_policy=last.policy if last else None,
        waitlist_offer_id=None,
    )
