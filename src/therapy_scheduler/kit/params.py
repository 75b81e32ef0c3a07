"""Strict input types shared by the endpoints: booleans, id lists, dates, time zones, limits.

A query string has only text, so its types read text (`true`, `a,b`); a JSON body has types of its own,
held to exactly by `JsonBody` (docs/DECISIONS.md, "In a JSON body")."""

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


def _at_most_ids(value: Any) -> Any:
    if isinstance(value, list) and len(value) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids are allowed")
    return value


# An id list in a JSON body: an array whose items are each one id (no comma lists, no single string).
IdArray = Annotated[
    list[uuid.UUID],
    BeforeValidator(_at_most_ids),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "maxItems": MAX_IDS,
            "description": f"Ids, one per item; at most {MAX_IDS}",
        }
    ),
]
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


# How a message names what a property takes (in the schema's order), and what was given.
_EXPECTED = {
    "string": ("a string",),
    "integer": ("an integer",),
    "number": ("a number",),
    "boolean": ("true", "false"),
    "array": ("an array",),
    "object": ("an object",),
    "null": ("null",),
}
_GIVEN = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _json_kind(value: Any) -> str | None:
    """The JSON type of a value as parsed from JSON; None for any other Python object (our own code
    may pass a UUID, a date or a model instance, which the field's own validation takes as before)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for kind, python in (("number", float), ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, python):
            return kind
    return None


def _allowed_kinds(schema: dict[str, Any], defs: dict[str, Any]) -> set[str] | None:
    """The JSON types a (sub)schema allows; None when it allows any."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        kinds: set[str] = set()
        for option in options:
            allowed = _allowed_kinds(option, defs)
            if allowed is None:
                return None
            kinds |= allowed
        return kinds
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _item_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of the items of an array that a (sub)schema allows, if it documents one."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
    for option in (schema, *schema.get("anyOf", ()), *schema.get("oneOf", ())):
        if option.get("type") == "array" and isinstance(option.get("items"), dict):
            items: dict[str, Any] = option["items"]
            return items
    return None


def _type_problem(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> str | None:
    """Why `value`, as parsed from JSON, does not have the JSON type `schema` documents (array items
    too), or None. Only the type is checked here; formats, limits and nested objects' own fields are
    left to the field's validation."""
    given = _json_kind(value)
    allowed = _allowed_kinds(schema, defs)
    if given is None or allowed is None:
        return None
    if given not in allowed and not (given == "integer" and "number" in allowed):
        words = [word for kind, names in _EXPECTED.items() if kind in allowed for word in names]
        expected = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
        return f"must be {expected}, not {_GIVEN[given]}"
    items = _item_schema(schema, defs) if given == "array" else None
    if items is not None:
        for index, item in enumerate(value):
            problem = _type_problem(item, items, defs)
            if problem is not None:
                return f"item {index} {problem}"
    return None


class JsonBody(BaseModel):
    """A JSON request body, with unknown keys refused: every value has the JSON type its schema
    documents.

    FastAPI validates a body in pydantic's lax Python mode, where `"120"` passes for an integer, `"yes"`
    or `1` for a boolean, a number for a date, and the query string's types split `"a,b"` into ids. A
    JSON body has types of its own: each value (and each array item) is first held to the JSON type of
    its property in the model's JSON schema (the OpenAPI document); then validated as before. Nested
    objects are bodies too and check their own fields."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _documented_type(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None:
            field = cls.model_fields[info.field_name]
            properties, defs = _json_schema(cls)
            schema = properties.get(field.alias or info.field_name)
            if schema is not None:
                problem = _type_problem(value, schema, defs)
                if problem is not None:
                    raise ValueError(problem)
        return value


_JSON_SCHEMAS: dict[type[BaseModel], tuple[dict[str, Any], dict[str, Any]]] = {}


def _json_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The properties of a model's JSON schema (validation mode) and the definitions they refer to."""
    found = _JSON_SCHEMAS.get(model)
    if found is None:
        schema = model.model_json_schema()
        found = (schema.get("properties", {}), schema.get("$defs", {}))
        _JSON_SCHEMAS[model] = found
    return found
