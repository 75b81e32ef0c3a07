"""Inputs of GET /admin/audit-events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from therapy_scheduler.kit.time import parse_instant


def _instant(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    return parse_instant(str(value), None)


Instant = Annotated[datetime, BeforeValidator(_instant)]


class AuditEventsParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    actor_user_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    entity_type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    entity_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    since: Instant | None = Field(default=None, description="Inclusive lower bound (ISO instant)")
    until: Instant | None = Field(default=None, description="Exclusive upper bound (ISO instant)")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _range(self) -> AuditEventsParams:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        if self.entity_id and not self.entity_type:
            raise ValueError("entity_id needs entity_type")
        return self
