"""Pagination cursors: one encoding for every list, tagged with the list it belongs to."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from therapy_scheduler.errors import InvalidCursor
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor

ROW = uuid.UUID("8f14e45f-ceea-467a-9575-5b5f3b8e3b1a")
AT = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def test_round_trips_and_exact_format() -> None:
    cursor = encode_cursor("sessions", AT, ROW)
    assert cursor == _raw(["sessions", "2027-03-10T15:00:00Z", str(ROW)])
    assert "=" not in cursor
    assert decode_cursor("sessions", cursor, (datetime, uuid.UUID)) == (AT, ROW)
    # An instant in another offset travels as UTC; sub-second parts are kept.
    local = datetime(2027, 3, 10, 10, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=-5)))
    cursor = encode_cursor("feeds", local, ROW)
    assert cursor == _raw(["feeds", "2027-03-10T15:00:00.250000Z", str(ROW)])
    assert decode_cursor("feeds", cursor, (datetime, uuid.UUID)) == (local, ROW)
    assert decode_cursor(
        "audit_events", encode_cursor("audit_events", AT, 42), (datetime, int)
    ) == (
        AT,
        42,
    )
    assert decode_cursor("clients", encode_cursor("clients", ROW), (uuid.UUID,)) == (ROW,)


@pytest.mark.parametrize(
    ("cursor", "kind", "shape"),
    [
        ("", "sessions", (datetime, uuid.UUID)),
        ("not-a-cursor", "sessions", (datetime, uuid.UUID)),
        ("%%%", "sessions", (datetime, uuid.UUID)),
        ("W10", "clients", (uuid.UUID,)),  # []
        (
            _raw(["sessions", "2027-03-10T15:00:00Z", str(ROW)])[:-3],
            "sessions",
            (datetime, uuid.UUID),
        ),
        (
            _raw(["sessions", "2027-03-10T15:00:00Z", str(ROW)]) + "!",
            "sessions",
            (datetime, uuid.UUID),
        ),
        # Another list's cursor, even of the same shape.
        (_raw(["feeds", "2027-03-10T15:00:00Z", str(ROW)]), "sessions", (datetime, uuid.UUID)),
        (_raw(["therapists", str(ROW)]), "clients", (uuid.UUID,)),
        # The shape before cursors named their list.
        (_raw({"t": "2027-03-10T15:00:00Z", "i": str(ROW)}), "sessions", (datetime, uuid.UUID)),
        (_raw({"k": "clients", "i": str(ROW)}), "clients", (uuid.UUID,)),
        # Values of the wrong type or count.
        (_raw(["sessions", "2027-03-10T15:00:00", str(ROW)]), "sessions", (datetime, uuid.UUID)),
        (_raw(["sessions", "9999-12-31T23:00:00Z", str(ROW)]), "sessions", (datetime, uuid.UUID)),
        (_raw(["sessions", 1_800_000_000, str(ROW)]), "sessions", (datetime, uuid.UUID)),
        (_raw(["sessions", "2027-03-10T15:00:00Z", "nope"]), "sessions", (datetime, uuid.UUID)),
        (_raw(["sessions", "2027-03-10T15:00:00Z", 7]), "sessions", (datetime, uuid.UUID)),
        (_raw(["sessions", "2027-03-10T15:00:00Z"]), "sessions", (datetime, uuid.UUID)),
        (
            _raw(["sessions", "2027-03-10T15:00:00Z", str(ROW), 1]),
            "sessions",
            (datetime, uuid.UUID),
        ),
        (_raw(["audit_events", "2027-03-10T15:00:00Z", "7"]), "audit_events", (datetime, int)),
        (_raw(["audit_events", "2027-03-10T15:00:00Z", True]), "audit_events", (datetime, int)),
        (_raw(["audit_events", "2027-03-10T15:00:00Z", 7.0]), "audit_events", (datetime, int)),
        (_raw(["clients", None]), "clients", (uuid.UUID,)),
        (_raw("clients"), "clients", (uuid.UUID,)),
    ],
)
def test_anything_else_is_invalid_cursor(cursor: str, kind: str, shape: Any) -> None:
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(kind, cursor, shape)
    assert caught.value.code == "INVALID_CURSOR"
    assert caught.value.status == 400
    assert caught.value.message == "The cursor is not valid; start again from the first page"
