"""JSON built by the database, in the service's own formats, on PostgreSQL and SQLite.

Hot read endpoints let the database render their rows as JSON text (`json_build_object` / `json_agg`
on PostgreSQL, `json_object` and arrays joined in order on SQLite) and relay that text inside the
response envelope without parsing it (`orjson.Fragment`). The values must read exactly as the Python
serializers write them: instants as `iso_utc` (`2026-03-09T14:00:00Z`, microseconds only when
present), ids in canonical UUID form, dates as `YYYY-MM-DD`.

PostgreSQL writes its JSON with a space around `:` and after `,`; the values (and key order) are the
same as orjson's compact form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    FromClause,
    Integer,
    Text,
    case,
    cast,
    extract,
    func,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

_KEY = re.compile(r"^[a-z_]+$")


def _text(value: str) -> ColumnElement[str]:
    """A constant string written into the SQL (no bind parameter: the statement text is fixed)."""
    if "'" in value:
        raise ValueError("no quotes in SQL constants")
    return literal_column(f"'{value}'", Text)


def number(value: int) -> ColumnElement[int]:
    """An integer constant written into the SQL."""
    return literal_column(str(int(value)), Integer)


class SqlJson:
    """Expression builders for one dialect ("postgresql" or "sqlite")."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def obj(self, **fields: Any) -> ColumnElement[Any]:
        """A JSON object with these keys, in this order (values: SQL expressions)."""
        args: list[Any] = []
        for key, value in fields.items():
            if not _KEY.match(key):  # keys are inlined into the SQL text
                raise ValueError(f"unsafe JSON key {key!r}")
            args += [_text(key), value]
        return func.json_build_object(*args) if self.postgres else func.json_object(*args)

    def obj_with_optional(
        self,
        fields: Mapping[str, Any],
        key: str,
        absent: ColumnElement[bool],
        value: ColumnElement[Any],
    ) -> ColumnElement[Any]:
        """`obj(**fields)` with `fields[key]` the JSON object `value`, or null when `absent`.

        PostgreSQL: one object with a CASE for that key. SQLite: a CASE between two objects, so
        that `value` is an argument of `json_object` itself and keeps its JSON subtype: a CASE for
        the key alone would embed it as a string unless wrapped in `json()`, which parses the
        object again on every row (docs/DECISIONS.md, "The hot read path")."""
        if self.postgres:
            return self.obj(**{**fields, key: case((absent, None), else_=value)})
        without = self.obj(**{**fields, key: null()})
        return case((absent, without), else_=self.obj(**{**fields, key: value}))

    def array(
        self, element: ColumnElement[Any], source: FromClause, *order_by: Any, scalars: bool = False
    ) -> ColumnElement[Any]:
        """Scalar subquery: a JSON array of `element` (JSON values, or plain `scalars`) over the
        rows of `source`, in `order_by` order; `[]` when there are none."""
        if self.postgres:
            agg = func.json_agg(aggregate_order_by(element, *order_by))
            return (
                select(func.coalesce(agg, cast(_text("[]"), JSON)))
                .select_from(source)
                .scalar_subquery()
            )
        ordered = select(element.label("e")).select_from(source).order_by(*order_by).subquery()
        if scalars:
            return select(func.json_group_array(ordered.c.e)).scalar_subquery()
        # The elements are JSON text already (their subtype is lost in the subquery): joined as
        # they are, not parsed again by `json()` for `json_group_array` (docs/PERFORMANCE.md).
        joined = _text("[").concat(func.group_concat(ordered.c.e, _text(","))).concat(_text("]"))
        return select(func.coalesce(joined, _text("[]"))).scalar_subquery()

    def instant(self, column: ColumnElement[Any]) -> ColumnElement[str]:
        """A UTC instant as `iso_utc` writes it."""
        if self.postgres:
            utc = func.timezone(_text("UTC"), column)
            whole_second = func.date_trunc(_text("second"), column) == column
            fraction = case((whole_second, _text("")), else_=func.to_char(utc, _text(".US")))
            seconds = func.to_char(utc, _text('YYYY-MM-DD"T"HH24:MI:SS'))
            return seconds.concat(fraction).concat(_text("Z"))
        # SQLite keeps UTC instants as "YYYY-MM-DD HH:MM:SS.ffffff" (see db.UTCDateTime): the
        # date, "T", and the time with its fraction unless that is absent or zero. Substrings
        # only (no `replace`), one CASE.
        day = func.substr(column, number(1), number(10)).concat(_text("T"))
        no_fraction = func.substr(column, number(21), number(6)).in_([_text(""), _text("000000")])
        whole = day.concat(func.substr(column, number(12), number(8)))
        fractional = day.concat(func.substr(column, number(12), number(15)))
        return case((no_fraction, whole), else_=fractional).concat(_text("Z"))

    def uuid(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """An id in canonical form (PostgreSQL's uuid type already renders so; SQLite stores 32
        hex digits)."""
        if self.postgres:
            return column
        parts = [func.substr(column, number(at), number(length)) for at, length in _UUID_GROUPS]
        text: ColumnElement[Any] = parts[0]
        for part in parts[1:]:  # NULL stays NULL: `||` with NULL gives NULL
            text = text.concat(_text("-")).concat(part)
        return text

    def whole_minutes(
        self, start: ColumnElement[Any], end: ColumnElement[Any]
    ) -> ColumnElement[int]:
        """Whole minutes from `start` to `end` (rounded down, like `timedelta // 60 s`)."""
        if self.postgres:
            return cast(func.floor(extract("epoch", end - start) / number(60)), Integer)

        def micros(instant: ColumnElement[Any]) -> ColumnElement[int]:
            seconds = cast(func.strftime(_text("%s"), instant), Integer)
            fraction = func.substr(instant, number(21), number(6))
            return seconds * number(1_000_000) + cast(fraction, Integer)

        return (micros(end) - micros(start)) // number(60_000_000)

    def greatest(self, a: Any, b: Any) -> ColumnElement[Any]:
        return (func.greatest if self.postgres else func.max)(a, b, type_=Integer)

    def as_text(self, value: ColumnElement[Any]) -> ColumnElement[str]:
        """The JSON text of a value, for relaying without parsing."""
        return cast(value, Text) if self.postgres else value


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
