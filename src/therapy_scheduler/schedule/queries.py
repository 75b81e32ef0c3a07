"""SQL of the read endpoints (SQLAlchemy Core): session rows with names, and their serialization."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    Select,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import aliased

from therapy_scheduler.auth.principal import caller_row
from therapy_scheduler.auth.scope import (
    ScopeKind,
    client_scope_for,
    session_scope_for,
    therapist_scope_for,
)
from therapy_scheduler.calendar.units import UnitBalance, UnitKey, balances_of
from therapy_scheduler.kit.sqljson import SqlJson, number
from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.models import Client, Session, Therapist
from therapy_scheduler.models.base import UTCDateTime

_T = aliased(Therapist, name="t")
_C = aliased(Client, name="c")

BASE_COLUMNS = (
    Session.id,
    Session.therapist_id,
    Session.client_id,
    Session.start_time,
    Session.end_time,
    Session.status,
    Session.location_type,
    Session.location_id,
    Session.service_code,
    Session.series_id,
    Session.authorization_id,
    Session.units,
    _T.full_name.label("therapist_name"),
    _C.full_name.label("client_name"),
)
DETAIL_COLUMNS = (Session.notes, Session.created_at, Session.updated_at)


def session_rows(*, detailed: bool = False) -> Select[Any]:
    columns = (*BASE_COLUMNS, *DETAIL_COLUMNS) if detailed else BASE_COLUMNS
    return (
        select(*columns)
        .join(_T, _T.id == Session.therapist_id)
        .join(_C, _C.id == Session.client_id)
    )


def _opt(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def serialize_session(
    row: Row[Any],
    *,
    balances: dict[UnitKey, UnitBalance] | None,
    auth_ends: dict[uuid.UUID, Any] | None,
    detailed: bool = False,
) -> dict[str, Any]:
    """The session shape of docs/API.md; `balances=None` means the caller may not see authorizations."""
    start: datetime = row.start_time
    end: datetime = row.end_time
    out: dict[str, Any] = {
        "id": str(row.id),
        "therapist_id": str(row.therapist_id),
        "client_id": str(row.client_id),
        "start_time": iso_utc(start),
        "end_time": iso_utc(end),
        "duration_minutes": int((end - start).total_seconds() // 60),
        "status": row.status,
        "location_type": row.location_type,
        "location_id": _opt(row.location_id),
        "service_code": row.service_code,
        "series_id": _opt(row.series_id),
        "therapist": {"id": str(row.therapist_id), "full_name": row.therapist_name},
        "client": {"id": str(row.client_id), "full_name": row.client_name},
    }
    if balances is not None:
        out["authorization"] = _authorization_block(row, balances, auth_ends or {})
    if detailed:
        out["notes"] = row.notes
        out["created_at"] = iso_utc(row.created_at)
        out["updated_at"] = iso_utc(row.updated_at)
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


# --- the session shape rendered by the database (hot read paths) ------------------------------


def session_json(
    j: SqlJson, row: Any, *, authorization: Any | None, detailed: bool
) -> ColumnElement[Any]:
    """`serialize_session` as one SQL expression over `row` (a FROM with the columns of
    `session_rows`); `authorization=None` leaves the block out (callers who may not see it)."""
    fields: dict[str, Any] = {
        "id": j.uuid(row.c.id),
        "therapist_id": j.uuid(row.c.therapist_id),
        "client_id": j.uuid(row.c.client_id),
        "start_time": j.instant(row.c.start_time),
        "end_time": j.instant(row.c.end_time),
        "duration_minutes": j.whole_minutes(row.c.start_time, row.c.end_time),
        "status": row.c.status,
        "location_type": row.c.location_type,
        "location_id": j.uuid(row.c.location_id),
        "service_code": row.c.service_code,
        "series_id": j.uuid(row.c.series_id),
        "therapist": j.obj(id=j.uuid(row.c.therapist_id), full_name=row.c.therapist_name),
        "client": j.obj(id=j.uuid(row.c.client_id), full_name=row.c.client_name),
    }
    if authorization is not None:
        fields["authorization"] = authorization
    if detailed:
        fields["notes"] = row.c.notes
        fields["created_at"] = j.instant(row.c.created_at)
        fields["updated_at"] = j.instant(row.c.updated_at)
    return j.obj(**fields)


def with_authorization_block(j: SqlJson, rows: Any) -> tuple[Any, ColumnElement[Any]]:
    """`rows` joined to the end dates and remaining units of their authorizations, and the
    authorization block of `_authorization_block` as a JSON expression (NULL for a session without
    authorization). Balances are computed once per distinct (authorization, service) of `rows`."""
    pairs = (
        select(rows.c.authorization_id, rows.c.service_code)
        .where(rows.c.authorization_id.is_not(None))
        .distinct()
        .subquery("pairs")
    )
    balance = balances_of(pairs)
    joined = rows.outerjoin(
        balance,
        and_(
            balance.c.authorization_id == rows.c.authorization_id,
            balance.c.service_code == rows.c.service_code,
        ),
    )
    units = func.coalesce(balance.c.remaining, number(0))
    block = case(
        (rows.c.authorization_id.is_(None), None),
        else_=j.obj(
            id=j.uuid(rows.c.authorization_id),
            end_date=balance.c.end_date,
            sessions_remaining=j.greatest(units, number(0))
            // j.greatest(func.coalesce(rows.c.units, number(0)), number(1)),
            units_remaining=units,
        ),
    )
    return joined, j.nested(block)


# --- get-schedule-data-batch: the page of a date range in one statement ----------------------


@dataclass(frozen=True)
class RangeShape:
    """What varies between the filters of get-schedule-data-batch: the caller's kind of scope and
    which id filters are present. Statements built from a shape are built once."""

    scope: ScopeKind
    therapists: bool
    clients: bool


@functools.lru_cache(maxsize=64)
def range_filter(shape: RangeShape) -> tuple[ColumnElement[bool], ...]:
    """The sessions overlapping the range that the caller may see, filtered by the ids given.
    Bind parameters: the scope's (`scope_params`), `range_start`, `range_end`, `range_floor`
    (= range_start - MAX_SESSION_LENGTH), `therapist_ids`, `client_ids`."""
    where = [
        session_scope_for(shape.scope),
        Session.start_time < bindparam("range_end", type_=UTCDateTime()),
        Session.end_time > bindparam("range_start", type_=UTCDateTime()),
        # index lower bound (implied by the one above and the longest session)
        Session.start_time > bindparam("range_floor", type_=UTCDateTime()),
    ]
    if shape.therapists:
        where.append(Session.therapist_id.in_(bindparam("therapist_ids", expanding=True)))
    if shape.clients:
        where.append(Session.client_id.in_(bindparam("client_ids", expanding=True)))
    return tuple(where)


@functools.lru_cache(maxsize=64)
def batch_page_statement(shape: RangeShape, dialect: str, authorizations: bool) -> Select[Any]:
    """One row: how many sessions match `range_filter(shape)` (`total`), and one page of them
    (by start, then id) as JSON text (`sessions`, rendered by the database as `serialize_session`
    does, with the authorization block when `authorizations`), with the therapist and client ids it
    shows (`therapist_ids`, `client_ids`: JSON arrays in page order, repeats kept).

    Bind parameters: those of `range_filter`, `batch_size`, `offset`, and `now` (the holds that
    still reserve units) when `authorizations`."""
    j = SqlJson(dialect)
    where = range_filter(shape)
    page = (
        session_rows()
        .where(*where)
        .order_by(Session.start_time, Session.id)
        .limit(bindparam("batch_size"))
        .offset(bindparam("offset"))
        .cte("page")
    )
    order = (page.c.start_time, page.c.id)
    source: Any = page
    authorization = None
    if authorizations:
        source, authorization = with_authorization_block(j, page)
    sessions = j.array(
        session_json(j, page, authorization=authorization, detailed=False), source, *order
    )
    therapist_ids = j.array(j.uuid(page.c.therapist_id), page, *order, scalars=True)
    client_ids = j.array(j.uuid(page.c.client_id), page, *order, scalars=True)
    total = select(func.count()).select_from(Session).where(*where).scalar_subquery()
    return select(
        total.label("total"),
        j.as_text(sessions).label("sessions"),
        j.as_text(therapist_ids).label("therapist_ids"),
        j.as_text(client_ids).label("client_ids"),
    )


# --- get-sessions-optimized: one statement per request ----------------------------------------


@dataclass(frozen=True)
class PageShape:
    """What varies between get-sessions-optimized statements: which filters are present, the
    caller's kind of scope, keyset or offset paging. Each shape is built (and compiled) once."""

    dialect: str
    scope: ScopeKind
    therapist: bool = False
    client: bool = False
    statuses: bool = False
    location_type: bool = False
    start: bool = False
    end: bool = False
    cursor: bool = False
    authorizations: bool = False


def _minutes(dialect: str) -> Any:
    if dialect == "sqlite":
        return func.round(
            (func.julianday(Session.end_time) - func.julianday(Session.start_time)) * 1440
        )
    return func.extract("epoch", Session.end_time - Session.start_time) / 60


@functools.lru_cache(maxsize=256)
def sessions_page_statement(shape: PageShape) -> Select[Any]:
    """One row: the page of sessions as JSON text (newest first), the client ids it shows, whether
    another page follows (`fetched` > limit) and where it starts, the summary over every matching
    session, and whether the filtered therapist / client is visible to the caller.

    Bind parameters: the scope's (`scope_params`), `limit`, `fetch` (= limit + 1), `offset` or
    `after_time` / `after_id`, `now`, and one per filter present (`therapist_id`, `client_id`,
    `statuses`, `location_type`, `range_start`, `range_end`)."""
    j = SqlJson(shape.dialect)
    where: list[Any] = [session_scope_for(shape.scope)]
    if shape.therapist:
        where.append(Session.therapist_id == bindparam("therapist_id"))
    if shape.client:
        where.append(Session.client_id == bindparam("client_id"))
    if shape.statuses:
        where.append(Session.status.in_(bindparam("statuses", expanding=True)))
    if shape.location_type:
        where.append(Session.location_type == bindparam("location_type"))
    if shape.start:
        where.append(Session.start_time >= bindparam("range_start"))
    if shape.end:
        where.append(Session.start_time < bindparam("range_end"))

    newest_first = (Session.start_time.desc(), Session.id.desc())
    page = session_rows(detailed=True).where(*where).order_by(*newest_first)
    if shape.cursor:
        after = tuple_(
            bindparam("after_time", type_=UTCDateTime()), bindparam("after_id", type_=Uuid())
        )
        page = page.where(tuple_(Session.start_time, Session.id) < after)
    else:
        page = page.offset(bindparam("offset"))
    fetched = page.limit(bindparam("fetch")).cte("page")
    shown = (
        select(fetched)
        .order_by(fetched.c.start_time.desc(), fetched.c.id.desc())
        .limit(bindparam("limit"))
        .cte("shown")
    )
    source: Any = shown
    authorization = None
    if shape.authorizations:
        source, authorization = with_authorization_block(j, shown)
    shown_order = (shown.c.start_time.desc(), shown.c.id.desc())
    sessions = j.array(
        session_json(j, shown, authorization=authorization, detailed=True), source, *shown_order
    )
    client_ids = j.array(j.uuid(shown.c.client_id), shown, *shown_order, scalars=True)
    last = select(shown).order_by(shown.c.start_time, shown.c.id).limit(number(1)).subquery()

    status = Session.status
    summary = (
        select(
            func.count().label("total"),
            func.count().filter(status == "scheduled").label("scheduled"),
            func.count().filter(status == "in_progress").label("in_progress"),
            func.count().filter(status == "completed").label("completed"),
            func.count().filter(status == "cancelled").label("cancelled"),
            func.count().filter(status == "no_show").label("no_show"),
            func.count()
            .filter(and_(status == "scheduled", Session.start_time > bindparam("now")))
            .label("upcoming"),
            func.coalesce(
                func.sum(cast(_minutes(shape.dialect), Float)).filter(status != "cancelled"), 0
            ).label("scheduled_minutes"),
        )
        .select_from(Session)
        .where(*where)
        .subquery("summary")
    )
    columns: list[Any] = [
        j.as_text(sessions).label("sessions"),
        j.as_text(client_ids).label("client_ids"),
        select(func.count()).select_from(fetched).scalar_subquery().label("fetched"),
        select(last.c.start_time).scalar_subquery().label("last_start_time"),
        select(last.c.id).scalar_subquery().label("last_id"),
        *summary.c,
    ]
    if shape.therapist:
        visible = therapist_scope_for(shape.scope), Therapist.id == bindparam("therapist_id")
        count = select(func.count()).select_from(Therapist).where(*visible)
        columns.append(count.scalar_subquery().label("therapists_visible"))
    if shape.client:
        visible = client_scope_for(shape.scope), Client.id == bindparam("client_id")
        count = select(func.count()).select_from(Client).where(*visible)
        columns.append(count.scalar_subquery().label("clients_visible"))
    # The caller as of this statement's snapshot (`Reading.as_caller`): the scope above was built
    # for an assumed principal, and the answer only counts if this row is still that principal.
    caller = caller_row().subquery("caller")
    columns.extend(column.label(f"caller_{column.name}") for column in caller.c)
    return select(*columns).select_from(summary.outerjoin(caller, true()))
