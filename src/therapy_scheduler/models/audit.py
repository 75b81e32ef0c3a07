from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime

# Both audit tables are append-only for the application: migration 0002 adds triggers that reject every
# UPDATE and DELETE (SQLite and PostgreSQL), and no code path issues one.
_EVENT_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEvent(Base):
    """Who did what to which entity, and when. Ids and codes only: never names, notes or contact data."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_time", "organization_id", "occurred_at", "id"),
        # Filters of GET /admin/audit-events, each a keyset scan in (occurred_at, id) order.
        Index("ix_audit_events_org_actor", "organization_id", "actor_user_id", "occurred_at", "id"),
        Index(
            "ix_audit_events_org_entity",
            "organization_id",
            "entity_type",
            "entity_id",
            "occurred_at",
            "id",
        ),
        Index("ix_audit_events_org_action", "organization_id", "action", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(_EVENT_ID, primary_key=True, autoincrement=True)
    organization_id: Mapped[OrgFK]
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[CreatedAt]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEventClient(Base):
    """The clients an audit event concerns (e.g. whose sessions a `phi.read` showed): one row per
    (event, client), so "who looked at this client's sessions" is an index range scan.

    Each row names an event of its own organization. On PostgreSQL a trigger checks that once per
    INSERT statement, in place of the two foreign keys declared here, which SQLite keeps beside a
    row trigger of the same check (migration 0016)."""

    __tablename__ = "audit_event_clients"
    __table_args__ = (
        Index(
            "ix_audit_event_clients_org_client_time",
            "organization_id",
            "client_id",
            "occurred_at",
            "audit_event_id",
        ),
    )

    audit_event_id: Mapped[int] = mapped_column(
        _EVENT_ID, ForeignKey("audit_events.id"), primary_key=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[OrgFK]
    # A copy of the event's occurred_at, so the client filter pages in the same order on this index.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
