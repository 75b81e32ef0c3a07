"""Webhooks (docs/WEBHOOKS.md): endpoints, the outbox of events, deliveries and their attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime

_SEQ = BigInteger().with_variant(Integer, "sqlite")


class WebhookEndpoint(Base):
    """A URL an organization's admin registered, the event types it receives and its signing secret.

    The secret is kept as issued (it must be recoverable to sign, docs/DECISIONS.md); during a rotation
    the previous one also signs until `previous_secret_expires_at`.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_organization", "organization_id", "created_at"),)

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class WebhookEvent(Base):
    """The outbox: one row per event, written in the transaction of the change it describes.

    `seq` orders events; `event_id` is the stable id receivers see (`webhook-id`); `dedupe_key` makes
    scanned events (reminders, authorization warnings) unique; `fanned_out` is set once the dispatcher
    has made a delivery for every subscribed endpoint.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("uq_webhook_events_event_id", "event_id", unique=True),
        Index("uq_webhook_events_dedupe_key", "dedupe_key", unique=True),
        Index("ix_webhook_events_fanned_out", "fanned_out", "seq"),
    )

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    organization_id: Mapped[OrgFK]
    event_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookDelivery(Base):
    """One event for one endpoint: `pending` until it `succeeded` or `failed` (retries exhausted)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        Index("uq_webhook_deliveries_endpoint_seq", "endpoint_id", "event_seq", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subject", "endpoint_id", "subject_id", "event_seq"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_seq: Mapped[int] = mapped_column(
        _SEQ, ForeignKey("webhook_events.seq", ondelete="CASCADE")
    )
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: status code, latency and error, never the response body."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempted_at"),)

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
