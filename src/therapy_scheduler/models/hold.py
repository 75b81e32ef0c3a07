from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime


class Hold(Base):
    """A provisional reservation of one or more occurrences under one unguessable `hold_key`.

    status: `active` until `confirmed`, `released` or `expired`; an active hold past `expires_at` no
    longer blocks, whether or not the purge task has marked it `expired` yet.
    """

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'confirmed', 'released', 'expired')", name="status"),
        Index("uq_holds_hold_key", "hold_key", unique=True),
        Index("ix_holds_expires", "status", "expires_at"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    hold_key: Mapped[str] = mapped_column(String(64))
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("therapists.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    time_zone: Mapped[str] = mapped_column(String(64))
    service_code: Mapped[str] = mapped_column(String(8))
    location_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("locations.id"))
    location_type: Mapped[str | None] = mapped_column(String(16))
    reschedule_session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    hold_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    series_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    confirmed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    # When the hold was confirmed or released (migration 0004); the record is purged 24 h later.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HoldOccurrence(Base):
    """One held time range. `active` mirrors the hold; expired rows stop counting at `expires_at`."""

    __tablename__ = "hold_occurrences"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="order"),
        CheckConstraint("units >= 0", name="units"),
        Index("ix_hold_occurrences_therapist", "therapist_id", "start_time"),
        Index("ix_hold_occurrences_client", "client_id", "start_time"),
        Index("ix_hold_occurrences_authorization", "authorization_id", "service_code"),
        Index("ix_hold_occurrences_hold", "hold_id", "occurrence_index"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("holds.id", ondelete="CASCADE"))
    occurrence_index: Mapped[int] = mapped_column(Integer)
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    service_code: Mapped[str] = mapped_column(String(8))
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    units: Mapped[int] = mapped_column(Integer, default=0)
    # The session this occurrence became on confirm (migration 0004): lets a second confirm replay.
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # As `sessions.supervises` (migration 0006): the confirm copies it into the session.
    supervises: Mapped[str | None] = mapped_column(String(8))
