"""The webhook feature's SQL: endpoints, deliveries and attempts (the outbox's insert is in
infra/outbox.py, where every feature can reach it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

ENDPOINT_COLUMNS = (
    WebhookEndpoint.id,
    WebhookEndpoint.url,
    WebhookEndpoint.description,
    WebhookEndpoint.event_types,
    WebhookEndpoint.enabled,
    WebhookEndpoint.disabled_reason,
    WebhookEndpoint.consecutive_failures,
    WebhookEndpoint.previous_secret_expires_at,
    WebhookEndpoint.created_at,
    WebhookEndpoint.updated_at,
)


async def list_endpoints(conn: AsyncConnection, organization_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.execute(
            select(*ENDPOINT_COLUMNS)
            .where(WebhookEndpoint.organization_id == organization_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


async def endpoint(
    conn: AsyncConnection, organization_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Any | None:
    return (
        await conn.execute(
            select(*ENDPOINT_COLUMNS).where(
                WebhookEndpoint.organization_id == organization_id,
                WebhookEndpoint.id == endpoint_id,
            )
        )
    ).first()


async def insert_endpoint(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(WebhookEndpoint).values(**values))


async def update_endpoint(
    conn: AsyncConnection, organization_id: uuid.UUID, endpoint_id: uuid.UUID, **values: Any
) -> None:
    await conn.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.id == endpoint_id
        )
        .values(**values)
    )


async def delete_endpoint(
    conn: AsyncConnection, organization_id: uuid.UUID, endpoint_id: uuid.UUID
) -> bool:
    # Attempts and deliveries go with it (ON DELETE CASCADE; SQLite has foreign keys on).
    gone = await conn.execute(
        delete(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.id == endpoint_id
        )
    )
    return bool(gone.rowcount)


async def current_secret(conn: AsyncConnection, endpoint_id: uuid.UUID) -> str | None:
    return (
        await conn.execute(select(WebhookEndpoint.secret).where(WebhookEndpoint.id == endpoint_id))
    ).scalar()


async def deliveries(
    conn: AsyncConnection,
    endpoint_id: uuid.UUID,
    status: str | None,
    limit: int,
    *,
    before_seq: int | None = None,
) -> list[Any]:
    """The endpoint's deliveries, newest event first, after the position `before_seq` (keyset on
    the unique (endpoint_id, event_seq) index)."""
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.status,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
            WebhookDelivery.last_attempt_at,
            WebhookDelivery.last_status_code,
            WebhookDelivery.last_error,
            WebhookDelivery.created_at,
            WebhookDelivery.completed_at,
            WebhookEvent.event_id,
            WebhookEvent.event_type,
            WebhookEvent.occurred_at,
            WebhookDelivery.event_seq,
        )
        .join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.event_seq.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before_seq is not None:
        query = query.where(WebhookDelivery.event_seq < before_seq)
    return list(await conn.execute(query))


async def attempts_of(conn: AsyncConnection, delivery_ids: list[uuid.UUID]) -> list[Any]:
    if not delivery_ids:
        return []
    return list(
        await conn.execute(
            select(
                WebhookAttempt.delivery_id,
                WebhookAttempt.attempted_at,
                WebhookAttempt.status_code,
                WebhookAttempt.latency_ms,
                WebhookAttempt.error,
            )
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
    )


async def requeue_delivery(
    conn: AsyncConnection, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> bool:
    """The delivery is due again now, with a fresh retry window."""
    done = await conn.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id == delivery_id)
        .values(
            status="pending",
            next_attempt_at=now,
            first_attempt_at=None,
            completed_at=None,
            lease_until=None,
        )
    )
    return bool(done.rowcount)
