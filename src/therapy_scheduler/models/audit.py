from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import CreatedAt, OrgFK
from therapy_scheduler.models.base import Base

# The audit log is append-only for the application: migration 0002 adds triggers that reject every
# UPDATE and DELETE (SQLite and PostgreSQL), and no code path issues one.
_EVENT_ID = BigInteger().with_variant(Integer, "sqlite")
# The type of `AuditEvent.client_ids` on PostgreSQL (canonical text in and out).
CLIENT_IDS_POSTGRESQL = ARRAY(Uuid(as_uuid=False))


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
        # The client filter on PostgreSQL. SQLite cannot index an array's elements: there the table
        # `audit_event_clients` (organization, client, time, event), which a trigger fills from each
        # new event's `client_ids`, is the index (migration 0017).
        Index("ix_audit_events_clients", "client_ids", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
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
    # The clients the event concerns (e.g. whose sessions a `phi.read` showed), as canonical text:
    # `uuid[]` on PostgreSQL, a JSON array on SQLite.
    client_ids: Mapped[list[str]] = mapped_column(
        JSON().with_variant(CLIENT_IDS_POSTGRESQL, "postgresql"), default=list
    )
