from __future__ import annotations

import uuid
from datetime import datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Time, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime


class AvailabilityWindow(Base):
    """A weekly working window in the therapist's own time zone (weekday 0 = Monday)."""

    __tablename__ = "availability_windows"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_local < end_local", name="order"),
        Index("ix_availability_windows_therapist", "therapist_id", "weekday"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    therapist_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("therapists.id", ondelete="CASCADE")
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_local: Mapped[time] = mapped_column(Time)
    end_local: Mapped[time] = mapped_column(Time)


class TimeOff(Base):
    """A dated exception to the weekly windows: `time_off` removes hours, `extra` adds them."""

    __tablename__ = "time_off"
    __table_args__ = (
        CheckConstraint("kind IN ('time_off', 'extra')", name="kind"),
        CheckConstraint("start_time < end_time", name="order"),
        Index("ix_time_off_therapist_start", "therapist_id", "start_time"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    therapist_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("therapists.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16), default="time_off")
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
