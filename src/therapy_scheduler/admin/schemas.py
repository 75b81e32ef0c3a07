"""Request bodies and list parameters of the admin API. Shape rules only; rules that need the
database (tenant, uniqueness, links) live in the services."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from therapy_scheduler.admin.common import PageParams
from therapy_scheduler.importing.schema import (
    AuthorizedServiceIn,
    Email,
    Latitude,
    LocationType,
    Longitude,
    Name,
    Phone,
    WeeklyWindowIn,
    coordinates_together,
)
from therapy_scheduler.kit.params import (
    BoundedDateTime,
    CalendarDate,
    JsonBody,
    StrictBool,
    TimeZoneName,
    TrimmedModel,
)

Credential = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9. -]+$")]
Specialties = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)
]
Search = Annotated[str, Field(min_length=1, max_length=100)]
PersonStatus = Literal["active", "inactive"]
AuthorizationStatus = Literal["pending", "approved", "denied", "expired"]
Role = Literal["admin", "scheduler", "therapist"]


class Body(TrimmedModel, JsonBody):
    pass


class Patch(Body):
    """PATCH semantics: only the fields present change; `null` clears an optional field and is refused
    for a required one; an empty body is refused."""

    required: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _required_not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.required:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# --- therapists ---------------------------------------------------------------------------------


class TherapistCreate(Body):
    full_name: Name
    credential: Credential
    email: Email | None = None
    phone: Phone | None = None
    specialties: Specialties = []
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA zone; default: the organization's"
    )
    status: PersonStatus = "active"


class TherapistPatch(Patch):
    required = frozenset({"full_name", "credential", "specialties", "time_zone", "status"})

    full_name: Name | None = None
    credential: Credential | None = None
    email: Email | None = None
    phone: Phone | None = None
    specialties: Specialties | None = None
    time_zone: TimeZoneName | None = None
    status: PersonStatus | None = None


class TherapistListParams(PageParams):
    status: PersonStatus | None = None
    q: Search | None = Field(default=None, description="case-insensitive part of the name")
    include_archived: StrictBool = False


# --- clients ------------------------------------------------------------------------------------


def _plausible_birth_date(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= date.today():  # noqa: DTZ011
        raise ValueError("must be a past date after 1900-01-01")
    return value


class ClientCreate(Body):
    full_name: Name
    email: Email | None = Field(default=None, description="guardian's e-mail")
    phone: Phone | None = Field(default=None, description="guardian's phone")
    date_of_birth: date | None = None
    status: PersonStatus = "active"
    therapist_ids: list[uuid.UUID] = Field(default=[], max_length=500, description="caseload")

    _dob = field_validator("date_of_birth")(_plausible_birth_date)


class ClientPatch(Patch):
    required = frozenset({"full_name", "status"})

    full_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    date_of_birth: date | None = None
    status: PersonStatus | None = None

    _dob = field_validator("date_of_birth")(_plausible_birth_date)


class ClientListParams(PageParams):
    status: PersonStatus | None = None
    q: Search | None = None
    include_archived: StrictBool = False
    therapist_id: uuid.UUID | None = Field(default=None, description="only this caseload")


class CaseloadPut(Body):
    therapist_ids: list[uuid.UUID] = Field(max_length=500)


# --- locations ----------------------------------------------------------------------------------


class LocationCreate(Body):
    name: Name
    location_type: LocationType
    is_active: bool = True
    # Both or neither (docs/ADMIN.md "Locations"): travel time is computed from them.
    latitude: Latitude | None = None
    longitude: Annotated[Longitude | None, Field(validate_default=True)] = None

    _both = field_validator("longitude")(coordinates_together)


class LocationPatch(Patch):
    required = frozenset({"name", "location_type", "is_active"})

    name: Name | None = None
    location_type: LocationType | None = None
    is_active: bool | None = None
    latitude: Latitude | None = None
    longitude: Annotated[Longitude | None, Field(validate_default=True)] = None

    _both = field_validator("longitude")(coordinates_together)


class TravelTimeIn(Body):
    """An admin's travel minutes between two locations, either way."""

    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    minutes: int = Field(ge=0, le=240)


class TravelTimesPut(Body):
    """The whole matrix: pairs not listed have no entry (coordinates or type defaults apply)."""

    entries: list[TravelTimeIn] = Field(max_length=10_000)


class LocationListParams(PageParams):
    location_type: LocationType | None = None
    q: Search | None = None
    include_inactive: StrictBool = False


# --- availability and time off ------------------------------------------------------------------


class AvailabilityPut(Body):
    windows: list[WeeklyWindowIn] = Field(max_length=100)


class TimeOffCreate(Body):
    """Local wall-clock times in the therapist's time zone, without offset."""

    start: BoundedDateTime
    end: BoundedDateTime
    kind: Literal["time_off", "extra"] = "time_off"


class TimeOffPatch(Patch):
    required = frozenset({"start", "end", "kind"})

    start: BoundedDateTime | None = None
    end: BoundedDateTime | None = None
    kind: Literal["time_off", "extra"] | None = None


class TimeOffListParams(PageParams):
    start_date: CalendarDate | None = Field(default=None, description="entries ending after it")
    end_date: CalendarDate | None = Field(default=None, description="entries starting by it")
    kind: Literal["time_off", "extra"] | None = None


# --- authorizations -----------------------------------------------------------------------------

Services = Annotated[list[AuthorizedServiceIn], Field(max_length=20)]


class AuthorizationCreate(Body):
    client_id: uuid.UUID
    payer: Name
    number: Annotated[str, Field(min_length=1, max_length=100)]
    start_date: CalendarDate
    end_date: CalendarDate
    status: AuthorizationStatus = "pending"
    services: Services = []


class AuthorizationPatch(Patch):
    """`services`, when given, replaces the whole list of approved services."""

    required = frozenset({"payer", "number", "start_date", "end_date", "status", "services"})

    payer: Name | None = None
    number: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    status: AuthorizationStatus | None = None
    services: Services | None = None


class AuthorizationListParams(PageParams):
    client_id: uuid.UUID | None = None
    status: AuthorizationStatus | None = None
    active_on: CalendarDate | None = Field(default=None, description="covers this date")


# --- users --------------------------------------------------------------------------------------


class UserCreate(Body):
    email: Email
    full_name: Name
    role: Role
    therapist_id: uuid.UUID | None = None


class UserPatch(Patch):
    required = frozenset({"email", "full_name", "role"})

    email: Email | None = None
    full_name: Name | None = None
    role: Role | None = None
    therapist_id: uuid.UUID | None = None


class UserListParams(PageParams):
    role: Role | None = None
    q: Search | None = Field(default=None, description="part of the name or e-mail")
    include_inactive: StrictBool = False
