"""Opaque pagination cursors: the position of the last row a page showed, tagged with its list.

A cursor is the unpadded base64url of a small JSON array, the list's kind first and then the values of
the position: `["sessions", "2027-03-10T15:00:00Z", "<uuid>"]`. Instants travel as ISO 8601 UTC text,
ids as UUID text or integers. Decoding checks the kind and the type of every value, so a cursor of one
list (or an older version's cursor, or a hand-edited one) is a 400 INVALID_CURSOR on another, never a
500 or another list's page. Cursors are opaque: their format is not stable across versions.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, TypeVar, overload

import orjson

from therapy_scheduler.errors import InvalidCursor
from therapy_scheduler.kit.time import iso_utc, parse_instant

Value = datetime | uuid.UUID | int
A = TypeVar("A", datetime, uuid.UUID, int)
B = TypeVar("B", datetime, uuid.UUID, int)
C = TypeVar("C", datetime, uuid.UUID, int)


def encode_cursor(kind: str, *values: Value) -> str:
    """The cursor of list `kind` at the position `values` (e.g. a start time and a row id)."""
    raw = orjson.dumps([kind, *(_encode(v) for v in values)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@overload
def decode_cursor(kind: str, cursor: str, shape: tuple[type[A]]) -> tuple[A]: ...
@overload
def decode_cursor(kind: str, cursor: str, shape: tuple[type[A], type[B]]) -> tuple[A, B]: ...
@overload
def decode_cursor(
    kind: str, cursor: str, shape: tuple[type[A], type[B], type[C]]
) -> tuple[A, B, C]: ...
def decode_cursor(kind: str, cursor: str, shape: tuple[type[Any], ...]) -> tuple[Any, ...]:
    """The position in `cursor`, one value of each type in `shape`; InvalidCursor unless `cursor` was
    made by `encode_cursor(kind, ...)` with values of those types."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = orjson.loads(raw)
        if not isinstance(payload, list) or len(payload) != len(shape) + 1 or payload[0] != kind:
            raise ValueError("not a cursor of this list")
        return tuple(_decode(t, v) for t, v in zip(shape, payload[1:], strict=True))
    except (ValueError, TypeError, binascii.Error) as exc:  # orjson.JSONDecodeError is a ValueError
        raise InvalidCursor("The cursor is not valid; start again from the first page") from exc


def _encode(value: Value) -> str | int:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode(kind: type[Any], value: object) -> Value:
    if kind is datetime and isinstance(value, str):
        return parse_instant(value, None)  # an offset is required
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected {kind.__name__}")
