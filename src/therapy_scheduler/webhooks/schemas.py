"""Input of the webhook admin API (docs/WEBHOOKS.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from therapy_scheduler.domain.events import EVENT_TYPES
from therapy_scheduler.kit.params import JsonBody, TrimmedModel
from therapy_scheduler.webhooks.targets import MAX_URL_LENGTH

MAX_OVERLAP_SECONDS = 7 * 24 * 3600


def _known_types(value: list[str]) -> list[str]:
    unknown = [t for t in value if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f'unknown event type "{unknown[0]}"')
    if len(set(value)) != len(value):
        raise ValueError("event types must be unique")
    return value


class EndpointCreate(JsonBody):
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    event_types: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool = True
    description: str | None = Field(default=None, max_length=200)

    _types = field_validator("event_types")(_known_types)


class EndpointPatch(JsonBody):
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=200)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known_types(value)


class RotateBody(JsonBody):
    # How long the previous secret keeps signing beside the new one.
    overlap_seconds: int = Field(default=24 * 3600, ge=0, le=MAX_OVERLAP_SECONDS)


class DeliveryListParams(TrimmedModel):
    status: Literal["pending", "succeeded", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=100)
    # `pagination.next_cursor` of the previous page, with the same `status` (docs/WEBHOOKS.md).
    cursor: str | None = Field(default=None, min_length=1, max_length=256)
