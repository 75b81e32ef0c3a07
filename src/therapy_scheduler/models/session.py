from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    CheckConstraint,
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

SESSION_STATUSES = ("scheduled", "in_progress", "completed", "cancelled", "no_show")


# Product rule (docs/DECISIONS.md): no session lasts longer than this. Enforced by a CHECK on PostgreSQL
# (migration 0005), by the importer, and by booking (15 to 480 minutes). It gives every "sessions
# overlapping [lo, hi)" query a lower bound, `start_time > lo - MAX_SESSION_LENGTH`, so that the
# (therapist_id, start_time) indexes scan only the range instead of all history before `hi`.
MAX_SESSION_LENGTH = timedelta(hours=8)


class Session(Base):
    """A therapy session, `[start_time, end_time)` in UTC.

    `units` is what the session costs its authorization; `consumes_units` says whether it spends them now
    (scheduled, in progress, completed, or late-cancelled under a policy that keeps the units).
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('scheduled', 'in_progress', 'completed', 'cancelled', 'no_show')",
            name="status",
        ),
        CheckConstraint("start_time < end_time", name="order"),
        CheckConstraint("units >= 0", name="units"),
        # Hot paths: the sessions list (org, time desc), per-therapist / per-client ranges, units.
        Index("ix_sessions_org_start", "organization_id", "start_time", "id"),
        Index("ix_sessions_therapist_start", "therapist_id", "start_time", "id"),
        Index("ix_sessions_client_start", "client_id", "start_time", "id"),
        # The units an authorized service has used, in all or up to a session (by start, then id):
        # every column such a sum reads, so that it never visits the table (migration 0015).
        Index(
            "ix_sessions_authorization_units",
            "authorization_id",
            "service_code",
            "consumes_units",
            "start_time",
            "id",
            "units",
        ),
        Index("ix_sessions_series", "series_id"),
        # A client's supervisions of a code within a range (booking/queries/supervision.py): only
        # supervising sessions enter it, ordinary ones (NULL here) never write to it (migration
        # 0014, docs/PERFORMANCE.md "What limits each figure": booking).
        Index(
            "ix_sessions_supervises",
            "client_id",
            "supervises",
            "start_time",
            sqlite_where=text("supervises IS NOT NULL"),
            postgresql_where=text("supervises IS NOT NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("therapists.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id"))
    location_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("locations.id"))
    location_type: Mapped[str | None] = mapped_column(String(16))
    service_code: Mapped[str] = mapped_column(String(8))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("authorizations.id")
    )
    units: Mapped[int] = mapped_column(Integer, default=0)
    consumes_units: Mapped[bool] = mapped_column(Boolean, default=True)
    series_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # NULL for an ordinary session; for a supervising one (a 97155 inside a 97153), the service code
    # of the session it supervises (docs/BOOKING.md "Supervision overlap", migration 0006).
    supervises: Mapped[str | None] = mapped_column(String(8))
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Cancellation(Base):
    """Why, when and by whom a session was cancelled; the session's clinical notes stay untouched."""

    __tablename__ = "cancellations"
    __table_args__ = (Index("ix_cancellations_session", "session_id"),)

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sessions.id"))
    cancelled_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cancelled_at: Mapped[CreatedAt]
    reason: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(64))
    late_cancellation: Mapped[bool] = mapped_column(Boolean)
    units_released: Mapped[int] = mapped_column(Integer)
