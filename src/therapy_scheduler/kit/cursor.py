"""Opaque keyset cursors: the (start_time, id) of the last row a page showed."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import orjson

from therapy_scheduler.errors import InvalidCursor
from therapy_scheduler.kit.time import iso_utc, parse_instant


def encode_cursor(start_time: datetime, row_id: uuid.UUID) -> str:
    raw = orjson.dumps({"t": iso_utc(start_time), "i": str(row_id)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        return parse_instant(str(payload["t"]), None), uuid.UUID(str(payload["i"]))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("The cursor is not valid; start again from the first page") from exc


def encode_row_cursor(kind: str, row_id: uuid.UUID) -> str:
    """A cursor naming only the last row's id (and the list it belongs to): no names or other data
    ever travel in URLs. The list re-reads that row's sort key to continue after it."""
    raw = orjson.dumps({"k": kind, "i": str(row_id)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_row_cursor(kind: str, cursor: str) -> uuid.UUID:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if payload["k"] != kind:
            raise ValueError("cursor of another list")
        return uuid.UUID(str(payload["i"]))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("The cursor is not valid; start again from the first page") from exc
