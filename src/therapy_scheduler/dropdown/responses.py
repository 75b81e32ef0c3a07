"""OpenAPI shape of the dropdown answer (documentation and schema fuzzing; the route builds a dict)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel


class TherapistOption(BaseModel):
    id: UUID
    full_name: str
    credential: str | None
    status: str
    email: str | None = None  # only for admins asking include_contact=true
    phone: str | None = None


class ClientOption(BaseModel):
    id: UUID
    full_name: str
    status: str
    email: str | None = None  # only for admins asking include_contact=true
    phone: str | None = None


class LocationOption(BaseModel):
    id: UUID
    name: str
    location_type: str
    is_active: bool


class ValueLabel(BaseModel):
    value: str
    label: str


class ServiceCodeOption(BaseModel):
    code: str
    label: str
    unit_minutes: int


class ReasonOption(BaseModel):
    code: str
    label: str


class DropdownData(BaseModel):
    therapists: list[TherapistOption] | None = None
    clients: list[ClientOption] | None = None
    locations: list[LocationOption] | None = None
    location_types: list[ValueLabel] | None = None
    service_codes: list[ServiceCodeOption] | None = None
    session_statuses: list[ValueLabel] | None = None
    cancellation_reasons: list[ReasonOption] | None = None


class DropdownResponse(BaseModel):
    success: Literal[True]
    data: DropdownData
    cached: bool
    lastUpdated: datetime
