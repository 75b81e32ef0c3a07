"""Inputs of GET /reports/supervision."""

from __future__ import annotations

import re
import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class SupervisionReportParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    month: str = Field(
        max_length=7, description="The calendar month, YYYY-MM, in the organization's time zone"
    )
    therapist_id: uuid.UUID | None = Field(default=None, description="Only this RBT's row")

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        found = _MONTH.match(value)
        if found is None or not 1 <= int(found[2]) <= 12 or not 2000 <= int(found[1]) <= 2100:
            raise ValueError("month must be YYYY-MM (a month of the years 2000 to 2100)")
        return value

    @property
    def first_day(self) -> date:
        year, month = map(int, self.month.split("-"))
        return date(year, month, 1)

    @property
    def next_first_day(self) -> date:
        first = self.first_day
        return date(first.year + first.month // 12, first.month % 12 + 1, 1)
