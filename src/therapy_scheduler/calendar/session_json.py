"""The session as the API shows it (docs/API.md), described once.

`SESSION_FIELDS` and `DETAIL_FIELDS` list the keys in order with their kind. From them come:
- `session_rows`: the SELECT of the columns they need (names joined in);
- `serialize_session`: a row as a dict (Python, e.g. the sessions a confirm created);
- `session_json`: the same object as one SQL expression, rendered by the database on the hot read
  paths (`kit/sqljson.py`: the text must read exactly as `serialize_session` writes it);
- `SessionOut` / `SessionDetailOut`: the Pydantic models of the OpenAPI document.
The authorization block (admins and schedulers only) has one Python and one SQL renderer below, and
its model `AuthorizationRef`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from sqlalchemy import ColumnElement, Row, Select, and_, func, select
from sqlalchemy.orm import aliased

from therapy_scheduler.calendar.units import UnitBalance, UnitKey, balances_of
from therapy_scheduler.kit.sqljson import SqlJson, number
from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.models import Client, Session, Therapist

SessionStatus = Literal["scheduled", "in_progress", "completed", "cancelled", "no_show"]
Kind = Literal["id", "optional_id", "instant", "value", "minutes", "person"]


@dataclass(frozen=True)
class SessionField:
    """One key of the session object: its kind, the row columns it reads, its OpenAPI type."""

    name: str
    kind: Kind
    columns: tuple[str, ...]
    annotation: Any


class PersonRef(BaseModel):
    id: uuid.UUID
    full_name: str


class AuthorizationRef(BaseModel):
    """Only for roles that may see authorization data (admin, scheduler); absent for therapists."""

    id: uuid.UUID
    end_date: date | None
    sessions_remaining: int = Field(ge=0)
    units_remaining: int


def _f(name: str, kind: Kind, annotation: Any, *columns: str) -> SessionField:
    return SessionField(name, kind, columns or (name,), annotation)


SESSION_FIELDS = (
    _f("id", "id", uuid.UUID),
    _f("therapist_id", "id", uuid.UUID),
    _f("client_id", "id", uuid.UUID),
    _f("start_time", "instant", datetime),
    _f("end_time", "instant", datetime),
    _f("duration_minutes", "minutes", int, "start_time", "end_time"),
    _f("status", "value", SessionStatus),
    _f("location_type", "value", str | None),
    _f("location_id", "optional_id", uuid.UUID | None),
    _f("service_code", "value", str),
    _f("series_id", "optional_id", uuid.UUID | None),
    _f("therapist", "person", PersonRef, "therapist_id", "therapist_name"),
    _f("client", "person", PersonRef, "client_id", "client_name"),
)
DETAIL_FIELDS = (
    _f("notes", "value", str | None),
    _f("created_at", "instant", datetime),
    _f("updated_at", "instant", datetime),
)

# --- the rows ------------------------------------------------------------------------------------

_T = aliased(Therapist, name="t")
_C = aliased(Client, name="c")
_SOURCES: dict[str, Any] = {
    "therapist_name": _T.full_name.label("therapist_name"),
    "client_name": _C.full_name.label("client_name"),
}
# Also the columns the authorization block reads.
_EXTRA = ("authorization_id", "units")


def _columns(fields: tuple[SessionField, ...], extra: tuple[str, ...] = ()) -> tuple[Any, ...]:
    names = dict.fromkeys([c for f in fields for c in f.columns] + list(extra))
    return tuple(_SOURCES[n] if n in _SOURCES else getattr(Session, n) for n in names)


_BASE_COLUMNS = _columns(SESSION_FIELDS, _EXTRA)
_DETAIL_COLUMNS = _columns(DETAIL_FIELDS)


# Ids that the session's JSON shows more than once (the person blocks, the pages' id lists).
_SHARED_IDS = ("therapist_id", "client_id")


def session_rows(
    *, detailed: bool = False, j: SqlJson | None = None, fixed: Mapping[str, Any] | None = None
) -> Select[Any]:
    """Sessions with the columns of their JSON (therapist and client names joined in).

    With `j` on SQLite, also the therapist's and client's ids in canonical form (`id_text`): the
    JSON shows each two or three times per row, and SQLite stores 32 hex digits, so a CTE over these
    rows formats each once (docs/PERFORMANCE.md). `fixed`: the bind parameter that the caller's
    filter sets one of these ids to (`therapist_id` → `bindparam("therapist_id")`), formatted
    instead of the row's column: the same text on every row, which SQLite computes once per
    statement (an expression of bind parameters only) instead of once per row."""
    columns: tuple[Any, ...] = (*_BASE_COLUMNS, *_DETAIL_COLUMNS) if detailed else _BASE_COLUMNS
    if j is not None and not j.postgres:
        fixed = fixed or {}
        columns += tuple(
            j.uuid(fixed.get(c, getattr(Session, c))).label(f"{c}_text") for c in _SHARED_IDS
        )
    return (
        select(*columns)
        .join(_T, _T.id == Session.therapist_id)
        .join(_C, _C.id == Session.client_id)
    )


# --- in Python -----------------------------------------------------------------------------------


def _python(field: SessionField) -> Callable[[Row[Any]], Any]:
    a = field.columns[0]
    if field.kind == "id":
        return lambda row: str(getattr(row, a))
    if field.kind == "optional_id":
        return lambda row: None if (v := getattr(row, a)) is None else str(v)
    if field.kind == "instant":
        return lambda row: iso_utc(getattr(row, a))
    if field.kind == "minutes":
        b = field.columns[1]
        return lambda row: int((getattr(row, b) - getattr(row, a)).total_seconds() // 60)
    if field.kind == "person":
        b = field.columns[1]
        return lambda row: {"id": str(getattr(row, a)), "full_name": getattr(row, b)}
    return lambda row: getattr(row, a)


_PY_BASE = tuple((f.name, _python(f)) for f in SESSION_FIELDS)
_PY_DETAIL = tuple((f.name, _python(f)) for f in DETAIL_FIELDS)


def serialize_session(
    row: Row[Any],
    *,
    balances: dict[UnitKey, UnitBalance] | None,
    auth_ends: dict[uuid.UUID, Any] | None,
    detailed: bool = False,
) -> dict[str, Any]:
    """A session row as the API shows it; `balances=None`: the caller may not see authorizations."""
    out = {name: read(row) for name, read in _PY_BASE}
    if balances is not None:
        out["authorization"] = _authorization_block(row, balances, auth_ends or {})
    if detailed:
        out.update((name, read(row)) for name, read in _PY_DETAIL)
    return out


def _authorization_block(
    row: Row[Any], balances: dict[UnitKey, UnitBalance], auth_ends: dict[uuid.UUID, Any]
) -> dict[str, Any] | None:
    if row.authorization_id is None:
        return None
    balance = balances.get((row.authorization_id, row.service_code))
    end_info = auth_ends.get(row.authorization_id)
    units_remaining = balance.remaining if balance else 0
    per_session = max(int(row.units or 0), 1)
    return {
        "id": str(row.authorization_id),
        "end_date": end_info[1].isoformat() if end_info else None,
        "sessions_remaining": max(units_remaining, 0) // per_session,
        "units_remaining": units_remaining,
    }


# --- rendered by the database (hot read paths) ---------------------------------------------------


def id_text(j: SqlJson, row: Any, name: str) -> ColumnElement[Any]:
    """The id column `name` of `row` in canonical form: the one `session_rows(j=j)` formatted
    once per row when `row` has it."""
    formatted = row.c.get(f"{name}_text")
    return j.uuid(row.c[name]) if formatted is None else formatted


def _sql(j: SqlJson, row: Any, field: SessionField) -> ColumnElement[Any]:
    cols = [row.c[c] for c in field.columns]
    if field.kind in ("id", "optional_id"):
        return id_text(j, row, field.columns[0])
    if field.kind == "instant":
        return j.instant(cols[0])
    if field.kind == "minutes":
        return j.whole_minutes(cols[0], cols[1])
    if field.kind == "person":
        return j.obj(id=id_text(j, row, field.columns[0]), full_name=cols[1])
    column: ColumnElement[Any] = cols[0]
    return column


@dataclass(frozen=True)
class AuthorizationBlock:
    """The authorization block of `_authorization_block` in SQL: `absent` for a session without
    authorization (the block is then null), else the JSON object `value`."""

    absent: ColumnElement[bool]
    value: ColumnElement[Any]


def session_json(
    j: SqlJson, row: Any, *, authorization: AuthorizationBlock | None, detailed: bool
) -> ColumnElement[Any]:
    """`serialize_session` as one SQL expression over `row` (a FROM with the columns of
    `session_rows`); `authorization=None` leaves the block out (callers who may not see it)."""
    fields: dict[str, Any] = {f.name: _sql(j, row, f) for f in SESSION_FIELDS}
    if authorization is not None:
        fields["authorization"] = None  # its place among the keys
    if detailed:
        fields.update((f.name, _sql(j, row, f)) for f in DETAIL_FIELDS)
    if authorization is None:
        return j.obj(**fields)
    return j.obj_with_optional(fields, "authorization", authorization.absent, authorization.value)


def with_authorization_block(j: SqlJson, rows: Any) -> tuple[Any, AuthorizationBlock]:
    """`rows` joined to the end dates and remaining units of their authorizations, and the
    authorization block of `_authorization_block` in SQL. Balances are computed once per distinct
    (authorization, service) of `rows`, and on SQLite the authorization's id is formatted there
    too, once per pair instead of once per session (docs/DECISIONS.md, "The hot read path")."""
    pairs = (
        select(rows.c.authorization_id, rows.c.service_code)
        .where(rows.c.authorization_id.is_not(None))
        .distinct()
        .subquery("pairs")
    )
    if j.postgres:
        balance = balances_of(pairs)
        authorization_id = j.uuid(rows.c.authorization_id)
    else:
        formatted = j.uuid(pairs.c.authorization_id).label("authorization_id_text")
        balance = balances_of(pairs, formatted)
        authorization_id = balance.c.authorization_id_text
    joined = rows.outerjoin(
        balance,
        and_(
            balance.c.authorization_id == rows.c.authorization_id,
            balance.c.service_code == rows.c.service_code,
        ),
    )
    units = func.coalesce(balance.c.remaining, number(0))
    block = j.obj(
        id=authorization_id,
        end_date=balance.c.end_date,
        sessions_remaining=j.greatest(units, number(0))
        // j.greatest(func.coalesce(rows.c.units, number(0)), number(1)),
        units_remaining=units,
    )
    return joined, AuthorizationBlock(rows.c.authorization_id.is_(None), block)


# --- the OpenAPI models --------------------------------------------------------------------------


def _model_field(field: SessionField) -> Any:
    if field.kind == "minutes":
        return (field.annotation, Field(ge=0))
    return (field.annotation, ...)


SessionOut: type[BaseModel] = create_model(
    "SessionOut",
    **{f.name: _model_field(f) for f in SESSION_FIELDS},
    authorization=(AuthorizationRef | None, None),
)
SessionDetailOut: type[BaseModel] = create_model(
    "SessionDetailOut",
    __base__=SessionOut,
    **{f.name: _model_field(f) for f in DETAIL_FIELDS},
)
