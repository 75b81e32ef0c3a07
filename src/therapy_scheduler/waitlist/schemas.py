"""Inputs of the waitlist endpoints (docs/WAITLIST.md)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from therapy_scheduler.domain.vocab import SERVICE_CODES
from therapy_scheduler.kit.params import BoundedDateTime, CalendarDate, JsonBody, TimeZoneName

LocationType = Literal["clinic", "home", "school", "telehealth", "community"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
MAX_WINDOWS = 28
MAX_THERAPISTS = 20


def _instant_text(value: Any) -> Any:
    """Only ISO 8601 text: a bare number is not taken for a Unix time."""
    if isinstance(value, datetime) or (isinstance(value, str) and "T" in value.upper()):
        return value
    raise ValueError("must be an ISO 8601 date-time with a UTC offset, e.g. 2027-03-01T14:00:00Z")


def _with_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2027-03-01T14:00:00Z")
    return value


# An instant in a query: ISO 8601 with an offset, within the supported years.
QueryInstant = Annotated[
    BoundedDateTime, BeforeValidator(_instant_text), AfterValidator(_with_offset)
]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class WeeklyWindow(JsonBody):
    """An acceptable weekly window in the entry's local time: weekday 0 = Monday, "HH:MM" to "HH:MM"."""

    weekday: int = Field(ge=0, le=6)
    start: str = Field(min_length=5, max_length=5, description='local "HH:MM"')
    end: str = Field(min_length=5, max_length=5, description='local "HH:MM" (24:00 allowed)')

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError('must be a local time "HH:MM"')
        return value

    @model_validator(mode="after")
    def _order(self) -> WeeklyWindow:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end")
        return self

    @property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        return _minutes(self.end)


def _service(value: str | None) -> str | None:
    if value is not None and value not in SERVICE_CODES:
        raise ValueError(f'unknown service code "{value}"')
    return value


class EntryCreate(JsonBody):
    client_id: uuid.UUID
    service_code: str = Field(max_length=8)
    duration_minutes: int = Field(ge=15, le=480)
    therapist_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=MAX_THERAPISTS,
        description="Preferred therapists; default: anyone on the client's caseload",
    )
    windows: list[WeeklyWindow] = Field(min_length=1, max_length=MAX_WINDOWS)
    time_zone: TimeZoneName
    earliest_date: CalendarDate
    latest_date: CalendarDate | None = None
    location_type: LocationType | None = None
    priority: int = Field(default=0, ge=0, le=100, description="Higher is offered first")
    note: str | None = Field(default=None, max_length=2000)

    _known_service = field_validator("service_code")(_service)


class EntryPatch(JsonBody):
    service_code: str | None = Field(default=None, max_length=8)
    duration_minutes: int | None = Field(default=None, ge=15, le=480)
    therapist_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_THERAPISTS)
    windows: list[WeeklyWindow] | None = Field(default=None, min_length=1, max_length=MAX_WINDOWS)
    time_zone: TimeZoneName | None = None
    earliest_date: CalendarDate | None = None
    latest_date: CalendarDate | None = None
    location_type: LocationType | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    note: str | None = Field(default=None, max_length=2000)

    _known_service = field_validator("service_code")(_service)


class EntryListParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["waiting", "booked"] = "waiting"
    client_id: uuid.UUID | None = None
    therapist_id: uuid.UUID | None = None
    service_code: Annotated[str, Field(max_length=8)] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=200)] | None = None


class MatchParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: QueryInstant
    end: QueryInstant
    therapist_id: uuid.UUID
