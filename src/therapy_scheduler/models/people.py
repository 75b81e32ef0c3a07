from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import UUIDPK, CreatedAt, OrgFK
from therapy_scheduler.models.base import Base, UTCDateTime

ROLES = ("admin", "scheduler", "therapist")
PERSON_STATUSES = ("active", "inactive")
LOCATION_TYPES = ("clinic", "home", "school", "telehealth", "community")


class User(Base):
    """Someone who signs in. Role and organization live here, never in the token."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'scheduler', 'therapist')", name="role"),
        Index("uq_users_email", "email", unique=True),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    email: Mapped[str] = mapped_column(String(254))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    therapist_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("therapists.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[CreatedAt]


class Therapist(Base):
    __tablename__ = "therapists"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        Index("ix_therapists_org_name", "organization_id", "full_name"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    credential: Mapped[str] = mapped_column(String(16))
    specialties: Mapped[list[Any]] = mapped_column(JSON, default=list)
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[CreatedAt]


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        Index("ix_clients_org_name", "organization_id", "full_name"),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[CreatedAt]


class Caseload(Base):
    """Which therapists work with which clients; a therapist sees the sessions of their caseload."""

    __tablename__ = "caseloads"
    __table_args__ = (Index("ix_caseloads_client", "client_id", "therapist_id"),)

    therapist_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[OrgFK]


class Location(Base):
    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint(
            "location_type IN ('clinic', 'home', 'school', 'telehealth', 'community')",
            name="location_type",
        ),
        Index("ix_locations_org_name", "organization_id", "name"),
        CheckConstraint(
            "(latitude IS NULL AND longitude IS NULL) OR (latitude IS NOT NULL AND longitude IS "
            "NOT NULL AND latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180)",
            name="coordinates",
        ),
    )

    id: Mapped[UUIDPK]
    organization_id: Mapped[OrgFK]
    name: Mapped[str] = mapped_column(String(200))
    location_type: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Both or neither (docs/ADMIN.md): the travel time between two places comes from them.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class LocationTravel(Base):
    """The minutes an admin set for travelling between two locations, either way (docs/ADMIN.md):
    one row per pair, its ids in ascending order."""

    __tablename__ = "location_travel"
    __table_args__ = (
        CheckConstraint("minutes >= 0 AND minutes <= 240", name="minutes"),
        CheckConstraint("from_location_id < to_location_id", name="ordered_pair"),
        Index("ix_location_travel_org", "organization_id"),
        Index("ix_location_travel_to", "to_location_id"),
    )

    organization_id: Mapped[OrgFK]
    from_location_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    to_location_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    minutes: Mapped[int] = mapped_column(Integer)
