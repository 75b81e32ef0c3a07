"""Session lifecycle after booking (docs/BOOKING.md, lifecycle): start, complete, no-show, reactivate.

Each action asks the state machine (`states.TRANSITIONS`) whether it is allowed, runs under the same
people locks as every booking, keeps the units accounting exact and writes one audit event.

* start: scheduled → in_progress; complete: scheduled or in_progress → completed (recording a session
  as done without a separate start is allowed). Units stay spent.
* no-show: scheduled → no_show; a no-show consumes no units, so they return to the authorization.
* reactivate: cancelled → scheduled, only through the full booking rules (`rules.check_slots`:
  working hours, buffer, both calendars free of sessions and active holds, units available), and only
  for a session that has not started yet. Its units are planned again (usually the same
  authorization); its cancellation record stays as history.

Asking for the status a session already has is a harmless no-op (200, `changed: false`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import session_scope
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.confirm import sessions_view
from therapy_scheduler.booking.hold import error_with_alternatives
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.parties import require_people
from therapy_scheduler.booking.rules.apply import Booking, Refused, check_slots
from therapy_scheduler.booking.rules.constraints import overlap_as_conflict
from therapy_scheduler.booking.rules.locks import lock_people
from therapy_scheduler.booking.rules.states import CONSUMING, SessionInPast, refuse, target
from therapy_scheduler.errors import Forbidden, NotFound
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc

ACTIONS = ("start", "complete", "no_show", "reactivate")
# The status each action leads to, for "already there" replies and error details.
# The webhook event of each action (docs/WEBHOOKS.md); the others are `session.updated`.
SESSION_EVENT = {"complete": "session.completed", "no_show": "session.no_show"}

GOAL = {
    "start": "in_progress",
    "complete": "completed",
    "no_show": "no_show",
    "reactivate": "scheduled",
}


async def transition(
    *,
    db: Database,
    principal: Principal,
    session_id: Any,
    action: str,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Apply one lifecycle action to a session the caller owns (404 invisible, 403 not owned)."""
    try:
        return await _transition(db, principal, session_id, action, now, request_id, finalize)
    except Refused as refused:
        raise await error_with_alternatives(db, principal, refused) from None


async def _transition(
    db: Database,
    principal: Principal,
    session_id: Any,
    action: str,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None,
) -> dict[str, Any]:
    goal = GOAL[action]
    async with overlap_as_conflict(), db.write() as conn:
        visible = session_scope(principal)
        found = await queries.session_for_change(conn, session_id, visible)
        if found is None:
            raise NotFound("Session not found", details={"field": "session_id"})
        if not principal.can(Capability.BOOK_FOR_ANY_THERAPIST) and (
            found.therapist_id != principal.therapist_id
        ):
            raise Forbidden("A therapist may change only their own sessions")
        warnings: list[dict[str, Any]] = []
        replanned: tuple[uuid.UUID | None, int] | None = None
        supervises: tuple[str | None] | None = None
        if action == "reactivate" and found.status == "cancelled":
            if found.start_time <= now:
                raise SessionInPast(
                    "A session that has already started cannot be reactivated",
                    details={"session_id": str(found.id), "start_time": iso_utc(found.start_time)},
                )
            # The people's locks (the same as every booking's) are taken with the people.
            people = await require_people(
                conn, principal, found.therapist_id, found.client_id, lock=True
            )
            checked = await check_slots(
                conn,
                principal,
                Booking(
                    therapist_id=found.therapist_id,
                    client_id=found.client_id,
                    occurrences=[Occurrence(found.start_time, found.end_time)],
                    service_code=found.service_code,
                    location_id=found.location_id,
                    location_type=found.location_type,
                    replacing=found,
                    therapist_time_zone=people.time_zone,
                    locked=people.locked,
                ),
                now,
            )
            now, warnings = checked.now, checked.warnings
            plan = checked.plans[0]
            replanned = (plan.authorization_id, plan.units)
            supervises = (checked.supervises[0],)
        else:
            await lock_people(
                conn, therapist_ids=[found.therapist_id], client_ids=[found.client_id]
            )
        current = await queries.session_for_change(conn, session_id, visible, for_update=True)
        assert current is not None
        previous = current.status
        if previous == goal:
            changed = False
        else:
            new_status = target(previous, action)
            if new_status is None:
                raise refuse(current.id, previous, action, goal)
            changed = True
            consumes = new_status in CONSUMING
            units_released = current.units if current.consumes_units and not consumes else 0
            await queries.set_session_status(
                conn,
                session_id=current.id,
                status=new_status,
                consumes_units=consumes,
                updated_by=principal.user_id,
                updated_at=now,
                replanned=replanned,
                supervises=supervises,
            )
            await audit.record(
                conn,
                organization_id=principal.organization_id,
                actor_user_id=principal.user_id,
                action=f"session.{action}",
                entity_type="session",
                entity_id=current.id,
                request_id=request_id,
                details={
                    "from": previous,
                    "to": new_status,
                    "units_released": units_released,
                    "authorization_id": (
                        str(replanned[0]) if replanned is not None and replanned[0] else None
                    ),
                    "warnings": sorted({w["code"] for w in warnings}),
                },
                client_ids=[current.client_id],
            )
            await outbox.emit_session_event(
                conn,
                organization_id=principal.organization_id,
                event_type=SESSION_EVENT.get(action, "session.updated"),
                session_id=current.id,
                therapist_id=current.therapist_id,
                client_id=current.client_id,
                facts={"status": new_status},
            )
        view = await sessions_view(conn, principal, [current.id], now)
        response: dict[str, Any] = ok(
            session_id=str(current.id),
            action=action,
            previous_status=previous,
            status=goal,
            changed=changed,
            warnings=warnings,
            session=view[0],
        )
        if finalize is not None:
            await finalize(conn, response)
    return response
