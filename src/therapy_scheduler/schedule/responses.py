"""OpenAPI shapes of the read endpoints' success answers (documentation and schema fuzzing; the routes
build plain dicts). Extra keys are allowed, so fields may be added without breaking clients."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from therapy_scheduler.calendar.session_json import SessionDetailOut, SessionOut


class TimeRange(BaseModel):
    start_time: datetime
    end_time: datetime


class AvailabilityDay(BaseModel):
    therapist_id: UUID
    date: date
    time_zone: str
    windows: list[TimeRange]
    free_slots: list[TimeRange]


class ConflictOut(BaseModel):
    type: Literal[
        "outside_availability",
        "authorization_expired",
        "authorization_exhausted",
        "insufficient_break",
        "insufficient_travel_time",
    ]
    session_ids: list[UUID] = Field(min_length=1)
    therapist_id: UUID | None = None
    client_id: UUID | None = None
    description: str
    suggested_resolution: str
    # insufficient_travel_time: the trip and the time left for it, in minutes.
    travel_minutes: int | None = None
    gap_minutes: int | None = None


class BatchPagination(BaseModel):
    total_records: int = Field(ge=0)
    batch_size: int = Field(ge=1)
    current_offset: int = Field(ge=0)
    has_more: bool
    next_offset: int | None


class BatchPerformance(BaseModel):
    query_time_ms: float
    cache_hit: bool


class ScheduleBatchData(BaseModel):
    sessions: list[SessionOut]
    availability: list[AvailabilityDay] | None = None
    conflicts: list[ConflictOut] | None = None
    pagination: BatchPagination
    performance: BatchPerformance


class ScheduleBatchResponse(BaseModel):
    success: Literal[True]
    data: ScheduleBatchData
    request_parameters: dict[str, object]


class SessionsPagination(BaseModel):
    page: int = Field(ge=1)
    limit: int = Field(ge=1)
    total: int = Field(ge=0)
    total_pages: int = Field(ge=0)
    has_next_page: bool
    has_previous_page: bool
    next_cursor: str | None


class SessionsSummary(BaseModel):
    total_sessions: int = Field(ge=0)
    scheduled: int = Field(ge=0)
    in_progress: int = Field(ge=0)
    completed: int = Field(ge=0)
    cancelled: int = Field(ge=0)
    no_show: int = Field(ge=0)
    upcoming: int = Field(ge=0)
    scheduled_minutes: int = Field(ge=0)


class SessionsData(BaseModel):
    sessions: list[SessionDetailOut]
    pagination: SessionsPagination
    summary: SessionsSummary


class SessionsPerformance(BaseModel):
    query_time_ms: float


class SessionsPageResponse(BaseModel):
    success: Literal[True]
    data: SessionsData
    filters: dict[str, object]
    performance: SessionsPerformance
