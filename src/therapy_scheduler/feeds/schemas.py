"""Inputs of the calendar feed endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from therapy_scheduler.kit.params import JsonBody, StrictBool


class CreateFeedBody(JsonBody):
    therapist_id: uuid.UUID | None = Field(
        default=None, description="Whose sessions the feed shows; default: the calling therapist"
    )
    label: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description='A name for the caller\'s own use, e.g. "phone"'
    )


class ListFeedsParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    therapist_id: uuid.UUID | None = None
    include_revoked: StrictBool = False
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Annotated[str, Field(max_length=200)] | None = None
