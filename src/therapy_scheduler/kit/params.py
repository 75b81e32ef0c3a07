"""Strict input types shared by the endpoints: booleans, id lists, dates, time zones, limits."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from therapy_scheduler.kit.time import check_supported, zone

MAX_IDS = 500
MAX_RANGE_DAYS = 366


def _strict_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be true, false, 1 or 0")


def _split_ids(value: Any) -> Any:
    """Accept repeated parameters, comma-separated values, or JSON arrays; drop empty items."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            out.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            out.append(item)
    if len(out) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids are allowed")
    return out


def _split_words(value: Any) -> Any:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def _valid_zone(value: str) -> str:
    zone(value)
    return value


def _strict_date(value: Any) -> Any:
    if isinstance(value, str) and len(value.strip()) != 10:
        raise ValueError("must be a calendar date YYYY-MM-DD")
    return value


_D = TypeVar("_D", bound=date)


def _supported(value: _D) -> _D:
    """Dates and date-times within the supported years (kit.time.check_supported): no overflow."""
    check_supported(value)
    return value


StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]
_HEX = "[0-9a-fA-F]"
_UUID_PATTERN = (
    rf"(urn:uuid:)?\{{?{_HEX}{{8}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{12}}\}}?"
)
# What an id list accepts, as documented in OpenAPI: items that are one id, several comma-separated
# ids, or empty (empty items are dropped; the limit counts the ids after splitting, so it is stated
# in the description rather than as maxItems).
_ID_LIST_SCHEMA = {
    "type": "array",
    "items": {
        "type": "string",
        "pattern": rf"^[\s,]*({_UUID_PATTERN}[\s,]*)*$",
    },
    "description": f"Ids; repeated and/or comma-separated; at most {MAX_IDS}",
}
IdList = Annotated[list[uuid.UUID], BeforeValidator(_split_ids), WithJsonSchema(_ID_LIST_SCHEMA)]
WordList = Annotated[list[str], BeforeValidator(_split_words)]
TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_valid_zone)]
CalendarDate = Annotated[date, BeforeValidator(_strict_date), AfterValidator(_supported)]
# A date-time body field (local wall-clock or with an offset), on a day within the supported years.
BoundedDateTime = Annotated[datetime, AfterValidator(_supported)]


def check_date_range(start: date, end: date) -> None:
    if start > end:
        raise ValueError("start_date must not be after end_date")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"date range is limited to {MAX_RANGE_DAYS} days")


class TrimmedModel(BaseModel):
    """Input whose strings lose surrounding whitespace, with unknown keys refused.

    Whitespace is stripped before the length constraints apply, so without the check below a value
    longer than its documented `maxLength` was accepted when it began or ended with spaces (found by
    the full schema fuzz). Every string is first held to the `maxLength` of the JSON schema, as sent;
    then stripped and validated as before."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _documented_length(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and info.field_name is not None:
            field = cls.model_fields[info.field_name]
            limit = _max_lengths(cls).get(field.alias or info.field_name)
            if limit is not None and len(value) > limit:
                raise ValueError(f"at most {limit} characters")
        return value


_MAX_LENGTHS: dict[type[BaseModel], dict[str, int]] = {}


def _max_lengths(model: type[BaseModel]) -> dict[str, int]:
    """The documented `maxLength` of each string property (also when the property may be null)."""
    limits = _MAX_LENGTHS.get(model)
    if limits is None:
        limits = {}
        properties = model.model_json_schema().get("properties", {})
        for name, prop in properties.items():
            for option in (prop, *prop.get("anyOf", ())):
                if option.get("type") == "string" and "maxLength" in option:
                    limits[name] = int(option["maxLength"])
        _MAX_LENGTHS[model] = limits
    return limits
