from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt
from therapy_scheduler.models.base import Base


class Organization(Base):
    """A practice: its IANA time zone and its scheduling policies (see reference.settings)."""

    __tablename__ = "organizations"

    id: Mapped[UUIDPK]
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[CreatedAt]
