from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime


class CalendarFeed(Base):
    """A therapist's ICS feed, reached through an unguessable token of which only the SHA-256 is kept.

    Revoking sets `revoked_at`; a revoked feed answers 404 like one that never existed.
    """

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        Index("uq_calendar_feeds_token_hash", "token_hash", unique=True),
        Index("ix_calendar_feeds_org_therapist", "organization_id", "therapist_id", "created_at"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    therapist_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("therapists.id"))
    token_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
