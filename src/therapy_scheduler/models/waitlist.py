"""The waitlist (docs/WAITLIST.md): clients waiting for a service, the offers made to them, and the
durable record of freed slots that the matcher works through after each freeing transaction commits."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime


class WaitlistEntry(Base):
    """A client waiting for a service: how long, with whom, in which weekly windows (local time in
    `time_zone`), between which dates; `priority` (higher first), then the waiting time, orders offers.

    status: `waiting` until `booked` (an offer was accepted) or `removed` (DELETE)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'booked', 'removed')", name="status"),
        CheckConstraint("duration_minutes BETWEEN 15 AND 480", name="duration"),
        Index("ix_waitlist_entries_org_status", "organization_id", "status", "priority"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id"))
    service_code: Mapped[str] = mapped_column(String(8))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    therapist_ids: Mapped[list[str] | None] = mapped_column(JSON)
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    time_zone: Mapped[str] = mapped_column(String(64))
    earliest_date: Mapped[date] = mapped_column(Date)
    latest_date: Mapped[date | None] = mapped_column(Date)
    location_type: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WaitlistOffer(Base):
    """A freed slot offered to one entry: a hold (`hold_key`) with the organization's offer TTL.

    status: `open` until `accepted`, `declined` or `expired`. At most one open offer per entry (the
    partial unique index)."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired')", name="status"),
        Index(
            "uq_waitlist_offers_open_entry",
            "entry_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_waitlist_offers_org_status", "organization_id", "status", "expires_at"),
        Index("ix_waitlist_offers_entry", "entry_id", "therapist_id"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("waitlist_entries.id"))
    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    hold_key: Mapped[str] = mapped_column(String(64))
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="open")
    freed_slot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FreedSlot(Base):
    """Outbox: a therapist's time range freed by a committed change (cancel, hold released or
    expired, reschedule, removed time off), written in that change's transaction and matched against
    the waitlist after it commits. `processed_at` is set once matched (`offer_id`: the offer made)."""

    __tablename__ = "freed_slots"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="order"),
        Index(
            "ix_freed_slots_pending",
            "created_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    cause: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[CreatedAt]
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    offer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
