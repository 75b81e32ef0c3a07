"""The engines read JSON columns with orjson where that gives exactly what `json.loads` gives
(infra/json_columns.py): the same values and types, and the same errors."""

from __future__ import annotations

import json

import pytest

from therapy_scheduler.infra.json_columns import load_json

DOCUMENTS = [
    '{"hold_seconds_default": 300, "buffer_minutes": 15, "travel_policy": "warn"}',
    '{"a": 1, "b": 2, "a": 3}',
    "[1.5e308, 5e-324, 0.30000000000000004, -0.0, -0, 1E2, 1e-400]",
    "999999999999999999",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    '{"id": "1234567890123456789"}',
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    '"\\ud800"',
    '"\\u00e9\\n\\u0000"',
    "[" * 600 + "]" * 600,
    ' {"a" : [true, false, null]} ',
]
INVALID = ["", "{", "[1,]", "01", "+1", ".5", '"a\tb"', "[1] [2]", "\ufeff{}"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_document_reads_as_json_loads_reads_it(document: str) -> None:
    expected = json.loads(document)
    got = load_json(document)
    assert repr(got) == repr(expected)  # the same values and types (1 and 1.0 differ here)


@pytest.mark.parametrize("document", INVALID)
def test_invalid_json_is_refused_as_json_loads_refuses_it(document: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(document)
    with pytest.raises(json.JSONDecodeError):
        load_json(document)
