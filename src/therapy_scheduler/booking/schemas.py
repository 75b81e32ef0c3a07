"""Inputs of the booking endpoints. Shape rules live here; rules needing the database or the clock live
in the services (hold.py, confirm.py, cancel.py)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from therapy_scheduler.domain.vocab import CANCELLATION_REASONS, SERVICE_CODES
from therapy_scheduler.kit.params import CalendarDate, JsonBody, TimeZoneName

MAX_OCCURRENCES = 200
MAX_METADATA_BYTES = 4096
LocationType = Literal["clinic", "home", "school", "telehealth", "community"]
TimeText = str  # an ISO 8601 instant with offset, or a local time read in `time_zone`


def _service(value: str | None) -> str | None:
    if value is not None and value not in SERVICE_CODES:
        raise ValueError(f'unknown service code "{value}"')
    return value


class _Strict(JsonBody):
    pass


class OccurrenceIn(_Strict):
    start_time: TimeText = Field(min_length=1, max_length=64)
    end_time: TimeText | None = Field(default=None, min_length=1, max_length=64)


class RecurrenceIn(_Strict):
    rrule: str = Field(min_length=1, max_length=512)
    exdates: list[CalendarDate] = Field(default_factory=list, max_length=MAX_OCCURRENCES)


class HoldSessionIn(_Strict):
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    start_time: TimeText = Field(min_length=1, max_length=64)
    end_time: TimeText | None = Field(default=None, min_length=1, max_length=64)
    location_type: LocationType | None = None
    location_id: uuid.UUID | None = None
    service_code: str | None = Field(default=None, max_length=8)
    session_id: uuid.UUID | None = None

    _known_service = field_validator("service_code")(_service)


class HoldBody(_Strict):
    session: HoldSessionIn
    duration_minutes: int | None = Field(default=None, ge=1, le=1440)
    time_zone: TimeZoneName
    hold_seconds: int | None = Field(default=None, ge=30, le=900)
    metadata: dict[str, Any] | None = None
    occurrences: list[OccurrenceIn] | None = Field(
        default=None, min_length=1, max_length=MAX_OCCURRENCES
    )
    recurrence: RecurrenceIn | None = None
    # Forecast only (docs/BOOKING.md "Forecast"): check every occurrence, hold and write nothing.
    dry_run: bool = False

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        try:
            size = len(orjson.dumps(value))
        except TypeError as exc:  # e.g. an integer beyond 64 bits, which no JSON column keeps
            raise ValueError("must hold only JSON values (integers within 64 bits)") from exc
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
        return value

    @model_validator(mode="after")
    def _one_way_to_repeat(self) -> HoldBody:
        if self.occurrences is not None and self.recurrence is not None:
            raise ValueError("give either occurrences or recurrence, not both")
        if self.session.session_id is not None and (self.occurrences or self.recurrence):
            raise ValueError("a reschedule (session.session_id) holds exactly one occurrence")
        return self


class ConfirmSessionIn(_Strict):
    start_time: TimeText = Field(min_length=1, max_length=64)
    end_time: TimeText = Field(min_length=1, max_length=64)
    notes: str | None = Field(default=None, max_length=2000)
    location_type: LocationType | None = None
    location_id: uuid.UUID | None = None
    service_code: str | None = Field(default=None, max_length=8)

    _known_service = field_validator("service_code")(_service)


class ConfirmBody(_Strict):
    hold_key: str = Field(min_length=1, max_length=64)
    session: ConfirmSessionIn
    occurrences: list[OccurrenceIn] | None = Field(
        default=None, min_length=1, max_length=MAX_OCCURRENCES
    )
    time_zone: TimeZoneName | None = None
    start_time_offset_minutes: int | None = Field(default=None, ge=-1080, le=1080)
    end_time_offset_minutes: int | None = Field(default=None, ge=-1080, le=1080)


CancelScope = Literal["occurrence", "following", "series"]


class CancelBody(_Strict):
    session_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=40)
    notes: str | None = Field(default=None, max_length=2000)
    cancellation_policy: str | None = Field(default=None, min_length=1, max_length=64)
    scope: CancelScope = "occurrence"

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str | None) -> str | None:
        if value is not None and value not in CANCELLATION_REASONS:
            raise ValueError(f'unknown cancellation reason "{value}"')
        return value


def exdate_set(recurrence: RecurrenceIn | None) -> set[date]:
    return set(recurrence.exdates) if recurrence else set()


class RescheduleBody(_Strict):
    """Move one scheduled session (`POST /sessions/{id}/reschedule`): a hold then a confirm."""

    start_time: TimeText = Field(min_length=1, max_length=64)
    end_time: TimeText | None = Field(default=None, min_length=1, max_length=64)
    duration_minutes: int | None = Field(default=None, ge=1, le=1440)
    time_zone: TimeZoneName
    location_type: LocationType | None = None
    location_id: uuid.UUID | None = None
    service_code: str | None = Field(default=None, max_length=8)
    notes: str | None = Field(default=None, max_length=2000)

    _known_service = field_validator("service_code")(_service)


MAX_SUGGESTIONS = 50


class SuggestBody(_Strict):
    """`POST /suggest-alternative-times`. The window is `start_date`..`end_date` (local days in
    `time_zone`, inclusive) or `start_time`..`end_time` (instants, or local times in `time_zone`);
    without either, the next 14 days."""

    therapist_id: uuid.UUID
    client_id: uuid.UUID
    duration_minutes: int = Field(ge=15, le=480)
    service_code: str | None = Field(default=None, max_length=8)
    time_zone: TimeZoneName
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    start_time: TimeText | None = Field(default=None, min_length=1, max_length=64)
    end_time: TimeText | None = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=5, ge=1, le=MAX_SUGGESTIONS)
    location_type: LocationType | None = None
    location_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None  # a session being rescheduled: its own time counts as free
    # Only slots that supervise a client's session (a 97155 within a 97153, docs/BOOKING.md).
    supervising_only: bool = False

    _known_service = field_validator("service_code")(_service)

    @model_validator(mode="after")
    def _one_window(self) -> SuggestBody:
        dates = self.start_date is not None or self.end_date is not None
        times = self.start_time is not None or self.end_time is not None
        if dates and times:
            raise ValueError("give the window as dates or as times, not both")
        return self
