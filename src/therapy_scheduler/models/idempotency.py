from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime


class IdempotencyRecord(Base):
    """The first response to an `Idempotency-Key`, per organization, user and endpoint, for 24 h."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        Index(
            "uq_idempotency_records_scope",
            "organization_id",
            "user_id",
            "endpoint",
            "key",
            unique=True,
        ),
        Index("ix_idempotency_records_expires", "expires_at"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    endpoint: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_progress")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
