from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base

# A service with a weekly cap (the partial index's condition; the readers' is the same).
WEEKLY_CAPPED = "weekly_cap_units IS NOT NULL OR weekly_cap_minutes IS NOT NULL"


class Authorization(Base):
    """An insurer's approval of service units for one client over a date range (inclusive)."""

    __tablename__ = "authorizations"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'denied', 'expired')", name="status"),
        CheckConstraint("start_date <= end_date", name="dates"),
        Index("ix_authorizations_client", "client_id", "start_date"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id", ondelete="CASCADE"))
    payer: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(100))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[CreatedAt]


class AuthorizationService(Base):
    """Approved units of one service code (CPT) under an authorization."""

    __tablename__ = "authorization_services"
    __table_args__ = (
        CheckConstraint("approved_units >= 0", name="units"),
        CheckConstraint("unit_minutes > 0", name="unit_minutes"),
        CheckConstraint(
            "(weekly_cap_units IS NULL OR weekly_cap_minutes IS NULL)"
            " AND (weekly_cap_units IS NULL OR weekly_cap_units > 0)"
            " AND (weekly_cap_minutes IS NULL OR weekly_cap_minutes > 0)",
            name="weekly_cap",
        ),
        # The services with a weekly cap, a few among many (migration 0015).
        Index(
            "ix_authorization_services_capped",
            "authorization_id",
            "service_code",
            sqlite_where=text(WEEKLY_CAPPED),
            postgresql_where=text(WEEKLY_CAPPED),
        ),
    )

    authorization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("authorizations.id", ondelete="CASCADE"), primary_key=True
    )
    service_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    organization_id: Mapped[OrgFK]
    approved_units: Mapped[int] = mapped_column(Integer)
    unit_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # A payer's cap per week (docs/ADMIN.md): in units, or in minutes (given as hours), not both.
    weekly_cap_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    weekly_cap_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
