"""The webhook outbox (docs/WEBHOOKS.md): events are written in the transaction of the change they
describe, so a change that rolls back sends nothing and a committed one is never lost.

Payloads carry ids only (event id, type, time, organization, the objects' ids and a few non-personal
facts such as a reminder's lead time): never names, contact data, notes or dates of birth. Delivery
happens after commit, in the webhooks feature's dispatcher.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.domain.events import EVENT_TYPES
from therapy_scheduler.infra import last_statement
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.models import WebhookEvent

Fact = int | bool | str | None


def event_payload(
    *,
    event_id: uuid.UUID,
    event_type: str,
    organization_id: uuid.UUID,
    occurred_at: datetime,
    ids: Mapping[str, uuid.UUID | None],
    facts: Mapping[str, Fact] | None = None,
) -> dict[str, object]:
    """The body receivers get: Standard Webhooks' `type`, `timestamp` and `data`, with ids only."""
    data: dict[str, object] = {k: (str(v) if v is not None else None) for k, v in ids.items()}
    data.update(facts or {})
    return {
        "id": str(event_id),
        "type": event_type,
        "timestamp": iso_utc(occurred_at),
        "organization_id": str(organization_id),
        "data": data,
    }


async def emit(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    subject_id: uuid.UUID,
    ids: Mapping[str, uuid.UUID | None],
    facts: Mapping[str, Fact] | None = None,
    occurred_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> uuid.UUID:
    """Append one event to the outbox in the caller's transaction; `subject_id` is the object whose
    events are delivered in order (a session, a hold, an authorization)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    event_id = uuid.uuid4()
    when = occurred_at or utcnow()
    row = {
        "event_id": event_id,
        "organization_id": organization_id,
        "event_type": event_type,
        "subject_id": subject_id,
        "payload": event_payload(
            event_id=event_id,
            event_type=event_type,
            organization_id=organization_id,
            occurred_at=when,
            ids=ids,
            facts=facts,
        ),
        "occurred_at": when,
        "dedupe_key": dedupe_key,
        "fanned_out": False,
    }
    await last_statement.insert_later(conn, WebhookEvent, row)
    return event_id


async def existing_dedupe_keys(conn: AsyncConnection, keys: list[str]) -> set[str]:
    """Which of these keys already have an event (scanned events are emitted once per key)."""
    if not keys:
        return set()
    rows = await conn.execute(
        select(WebhookEvent.dedupe_key).where(WebhookEvent.dedupe_key.in_(keys))
    )
    return {str(r[0]) for r in rows}


async def emit_session_event(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    session_id: uuid.UUID,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    facts: Mapping[str, Fact] | None = None,
) -> uuid.UUID:
    """A session.* event: the session, its therapist and its client, by id."""
    return await emit(
        conn,
        organization_id=organization_id,
        event_type=event_type,
        subject_id=session_id,
        ids={"session_id": session_id, "therapist_id": therapist_id, "client_id": client_id},
        facts=facts,
    )


async def emit_hold_event(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    hold_id: uuid.UUID,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
) -> uuid.UUID:
    """A hold.* event: the hold (its id, not its key), its therapist and its client."""
    return await emit(
        conn,
        organization_id=organization_id,
        event_type=event_type,
        subject_id=hold_id,
        ids={"hold_id": hold_id, "therapist_id": therapist_id, "client_id": client_id},
    )


async def emit_offer_event(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    offer_id: uuid.UUID,
    entry_id: uuid.UUID,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    hold_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A waitlist.offer_* event: the offer, its waitlist entry, hold (or, once accepted, session),
    therapist and client, by id (docs/WAITLIST.md)."""
    ids: dict[str, uuid.UUID | None] = {
        "offer_id": offer_id,
        "entry_id": entry_id,
        "therapist_id": therapist_id,
        "client_id": client_id,
    }
    if hold_id is not None:
        ids["hold_id"] = hold_id
    if session_id is not None:
        ids["session_id"] = session_id
    return await emit(
        conn,
        organization_id=organization_id,
        event_type=event_type,
        subject_id=offer_id,
        ids=ids,
    )
