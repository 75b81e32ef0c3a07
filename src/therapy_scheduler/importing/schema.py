"""The JSON import document (docs/IMPORT.md). Every key is optional; records keep their ids (upsert by id)."""

from __future__ import annotations

import re
import uuid
from datetime import date, time
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.domain.vocab import SERVICE_CODES, WEEKDAYS
from therapy_scheduler.kit.params import (
    BoundedDateTime,
    CalendarDate,
    JsonBody,
    TimeZoneName,
    TrimmedModel,
)
from therapy_scheduler.models.session import MAX_SESSION_LENGTH

Name = Annotated[str, Field(min_length=1, max_length=200)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("is not a valid e-mail address")
    return value


Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]
Phone = Annotated[str, Field(max_length=40)]
LocationType = Literal["clinic", "home", "school", "telehealth", "community"]


class _Record(TrimmedModel, JsonBody):
    """A record of the JSON document: each value of its JSON type (the CSV reader converts cells)."""


def _service(code: str) -> str:
    if code not in SERVICE_CODES:
        raise ValueError(f'unknown service code "{code}"')
    return code


class OrganizationIn(_Record):
    id: uuid.UUID
    name: Name
    time_zone: TimeZoneName
    settings: OrganizationSettings = Field(default_factory=OrganizationSettings)


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


def coordinates_together(longitude: float | None, info: ValidationInfo) -> float | None:
    """A field validator of `longitude` (declared after `latitude`, validated even when left out):
    a location has both coordinates or neither."""
    if "latitude" not in info.data:
        return longitude  # latitude itself is invalid: its own error says why
    latitude = info.data["latitude"]
    if latitude is not None and longitude is None:
        raise ValueError("longitude is missing: give latitude and longitude together")
    if latitude is None and longitude is not None:
        raise ValueError("latitude is missing: give latitude and longitude together")
    return longitude


class LocationIn(_Record):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: Name
    location_type: LocationType
    is_active: bool = True
    # Both or neither (docs/IMPORT.md): travel time between places is computed from them.
    latitude: Latitude | None = None
    longitude: Annotated[Longitude | None, Field(validate_default=True)] = None

    _both = field_validator("longitude")(coordinates_together)


class WeeklyWindowIn(_Record):
    weekday: str
    start: time
    end: time

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.lower() not in WEEKDAYS:
            raise ValueError(f'unknown weekday "{value}"')
        return value.lower()

    @model_validator(mode="after")
    def _order(self) -> WeeklyWindowIn:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class LocalRangeIn(_Record):
    """Local wall-clock times in the therapist's zone (no offset)."""

    start: BoundedDateTime
    end: BoundedDateTime
    kind: Literal["time_off", "extra"] = "time_off"

    @model_validator(mode="after")
    def _order(self) -> LocalRangeIn:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("times are local to the therapist's time_zone: give no offset")
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class TherapistIn(_Record):
    id: uuid.UUID
    organization_id: uuid.UUID
    full_name: Name
    email: Email | None = None
    phone: Phone | None = None
    credential: Annotated[str, Field(min_length=1, max_length=16)] = "RBT"
    specialties: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=50)
    time_zone: TimeZoneName
    status: Literal["active", "inactive"] = "active"
    availability: list[WeeklyWindowIn] | None = Field(default=None, max_length=100)
    time_off: list[LocalRangeIn] | None = Field(default=None, max_length=1000)
    archived_at: BoundedDateTime | None = None


class ClientIn(_Record):
    id: uuid.UUID
    organization_id: uuid.UUID
    full_name: Name
    email: Email | None = None
    phone: Phone | None = None
    date_of_birth: date | None = None
    status: Literal["active", "inactive"] = "active"
    archived_at: BoundedDateTime | None = None
    therapist_ids: list[uuid.UUID] | None = Field(default=None, max_length=500)


class UserIn(_Record):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: Email
    full_name: Name
    role: Literal["admin", "scheduler", "therapist"]
    therapist_id: uuid.UUID | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _therapist_link(self) -> UserIn:
        if self.role == "therapist" and self.therapist_id is None:
            raise ValueError("a therapist user needs therapist_id")
        return self


class AuthorizedServiceIn(_Record):
    service_code: Annotated[str, Field(max_length=8)]
    approved_units: int = Field(ge=0, le=1_000_000)
    unit_minutes: int = Field(default=15, ge=1, le=480)
    # A payer's cap per week (docs/ADMIN.md), in units or in hours (stored as whole minutes).
    weekly_cap_units: int | None = Field(default=None, gt=0, le=10_000)
    weekly_cap_hours: float | None = Field(default=None, gt=0, le=168)

    _known = field_validator("service_code")(_service)

    @field_validator("weekly_cap_hours")
    @classmethod
    def _one_cap(cls, hours: float | None, info: ValidationInfo) -> float | None:
        if hours is None:
            return None
        if info.data.get("weekly_cap_units") is not None:
            raise ValueError("give weekly_cap_units or weekly_cap_hours, not both")
        if abs(hours * 60 - round(hours * 60)) > 1e-6:
            raise ValueError("must be a whole number of minutes (e.g. 7.5 or 7.25 hours)")
        return hours

    def columns(self) -> dict[str, str | int | None]:
        """The row of `authorization_services` (the hours cap is stored in minutes)."""
        return {
            "service_code": self.service_code,
            "approved_units": self.approved_units,
            "unit_minutes": self.unit_minutes,
            "weekly_cap_units": self.weekly_cap_units,
            "weekly_cap_minutes": (
                round(self.weekly_cap_hours * 60) if self.weekly_cap_hours is not None else None
            ),
        }


class AuthorizationIn(_Record):
    id: uuid.UUID
    client_id: uuid.UUID
    number: Annotated[str, Field(min_length=1, max_length=100)]
    payer: Name
    start_date: CalendarDate
    end_date: CalendarDate
    status: Literal["pending", "approved", "denied", "expired"]
    services: list[AuthorizedServiceIn] = Field(default=[], max_length=20)

    @model_validator(mode="after")
    def _dates(self) -> AuthorizationIn:
        if self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        codes = [s.service_code for s in self.services]
        if len(set(codes)) != len(codes):
            raise ValueError("each service code may appear once")
        return self


class SessionIn(_Record):
    id: uuid.UUID
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    start_time: BoundedDateTime
    end_time: BoundedDateTime
    status: Literal["scheduled", "in_progress", "completed", "cancelled", "no_show"] = "scheduled"
    location_type: LocationType | None = None
    location_id: uuid.UUID | None = None
    service_code: Annotated[str, Field(max_length=8)] | None = None
    authorization_id: uuid.UUID | None = None
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    series_id: uuid.UUID | None = None  # sessions of one recurring booking share it

    @field_validator("service_code")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return None if value is None else _service(value)

    @model_validator(mode="after")
    def _instants(self) -> SessionIn:
        if self.start_time.tzinfo is None or self.end_time.tzinfo is None:
            raise ValueError("session times need a UTC offset (e.g. 2026-03-09T14:00:00Z)")
        if self.start_time >= self.end_time:
            raise ValueError("start_time must be before end_time")
        if self.end_time - self.start_time > MAX_SESSION_LENGTH:
            raise ValueError("a session lasts at most 8 hours")
        return self


class ImportDocument(_Record):
    organizations: list[OrganizationIn] = []
    locations: list[LocationIn] = []
    therapists: list[TherapistIn] = []
    clients: list[ClientIn] = []
    users: list[UserIn] = []
    authorizations: list[AuthorizationIn] = []
    sessions: list[SessionIn] = []
