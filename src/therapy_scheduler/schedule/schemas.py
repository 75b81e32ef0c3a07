"""Inputs of the read endpoints. Shape rules live here; rules needing the database live in service.py."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from therapy_scheduler.domain.vocab import LOCATION_TYPES, SESSION_STATUSES
from therapy_scheduler.kit.params import (
    CalendarDate,
    IdArray,
    IdList,
    JsonBody,
    StrictBool,
    TimeZoneName,
    WordList,
    check_date_range,
)

MAX_OFFSET = 10_000_000


class ScheduleBatchParams(BaseModel):
    """get-schedule-data-batch: the same names in the query string (GET) or the JSON body (POST)."""

    model_config = ConfigDict(extra="ignore")

    start_date: CalendarDate
    end_date: CalendarDate
    therapist_ids: IdList = []
    client_ids: IdList = []
    batch_size: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    include_availability: StrictBool = False
    include_conflicts: StrictBool = False
    time_zone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _range(self) -> ScheduleBatchParams:
        check_date_range(self.start_date, self.end_date)
        return self


class ScheduleBatchBody(ScheduleBatchParams, JsonBody):
    """The POST body: the same fields with their JSON types (ids as arrays of ids, booleans as
    true/false, numbers as numbers), unknown keys refused."""

    model_config = ConfigDict(extra="forbid")

    therapist_ids: IdArray = []
    client_ids: IdArray = []


class SessionsParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1, le=MAX_OFFSET)
    limit: int = Field(default=50, ge=1, le=100)
    therapist_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    status: WordList = []
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    location_type: str | None = Field(default=None, max_length=32)
    cursor: str | None = Field(default=None, min_length=1, max_length=256)
    time_zone: TimeZoneName | None = None

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SESSION_STATUSES]
        if unknown:
            raise ValueError(f"unknown status(es): {', '.join(sorted(set(unknown)))}")
        return sorted(set(value))

    @field_validator("location_type")
    @classmethod
    def _location_type(cls, value: str | None) -> str | None:
        if value is not None and value not in LOCATION_TYPES:
            raise ValueError(f'unknown location type "{value}"')
        return value

    @model_validator(mode="after")
    def _range(self) -> SessionsParams:
        if self.start_date and self.end_date:
            check_date_range(self.start_date, self.end_date)
        return self
