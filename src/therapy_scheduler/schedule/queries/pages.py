"""SQL of the read endpoints' pages (SQLAlchemy Core); the session's JSON comes from
calendar/session_json.py."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    select,
    true,
    tuple_,
)

from therapy_scheduler.auth.principal import caller_row
from therapy_scheduler.auth.scope import (
    ScopeKind,
    client_scope_for,
    session_scope_for,
    therapist_scope_for,
)
from therapy_scheduler.calendar.session_json import (
    id_text,
    session_json,
    session_rows,
    with_authorization_block,
)
from therapy_scheduler.infra.driver_read import in_ids
from therapy_scheduler.kit.sqljson import SqlJson, number
from therapy_scheduler.models import Client, Session, Therapist
from therapy_scheduler.models.base import UTCDateTime

# --- get-schedule-data-batch: the page of a date range in one statement ----------------------


@dataclass(frozen=True)
class RangeShape:
    """What varies between the filters of get-schedule-data-batch: the database's dialect, the
    caller's kind of scope and which id filters are present. Statements built from a shape are
    built once."""

    dialect: str
    scope: ScopeKind
    therapists: bool
    clients: bool


@functools.lru_cache(maxsize=64)
def range_filter(shape: RangeShape) -> tuple[ColumnElement[bool], ...]:
    """The sessions overlapping the range that the caller may see, filtered by the ids given.
    Bind parameters: the scope's (`scope_params`), `range_start`, `range_end`, `range_floor`
    (= range_start - MAX_SESSION_LENGTH), `therapist_ids`, `client_ids` (lists, `in_ids`: one array
    on PostgreSQL, so that the statements built on the filter run on the driver)."""
    where = [
        session_scope_for(shape.scope),
        Session.start_time < bindparam("range_end", type_=UTCDateTime()),
        Session.end_time > bindparam("range_start", type_=UTCDateTime()),
        # index lower bound (implied by the one above and the longest session)
        Session.start_time > bindparam("range_floor", type_=UTCDateTime()),
    ]
    if shape.therapists:
        where.append(in_ids(Session.therapist_id, "therapist_ids", shape.dialect))
    if shape.clients:
        where.append(in_ids(Session.client_id, "client_ids", shape.dialect))
    return tuple(where)


@functools.lru_cache(maxsize=64)
def batch_page_statement(shape: RangeShape, authorizations: bool) -> Select[Any]:
    """One row: how many sessions match `range_filter(shape)` (`total`), and one page of them
    (by start, then id) as JSON text (`sessions`, rendered by the database as `serialize_session`
    does, with the authorization block when `authorizations`), with the therapist and client ids it
    shows (`therapist_ids`, `client_ids`: JSON arrays in page order, repeats kept). With id
    filters, how many of the therapists (`therapists_visible`) and clients (`clients_visible`)
    asked for the caller may see: the ids are checked in the same statement, not in one of their
    own (docs/PERFORMANCE.md, "schedule_week"). And the caller as of the statement's snapshot
    (columns `caller_*`, `caller_row`), as the session list's.

    Bind parameters: those of `range_filter`, `batch_size`, `offset`, `caller_id`, and `now` (the
    holds that still reserve units) when `authorizations`."""
    j = SqlJson(shape.dialect)
    where = range_filter(shape)
    page = (
        session_rows(j=j)
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
    therapist_ids = j.array(id_text(j, page, "therapist_id"), page, *order, scalars=True)
    client_ids = j.array(id_text(j, page, "client_id"), page, *order, scalars=True)
    total = select(func.count()).select_from(Session).where(*where).scalar_subquery()
    columns: list[Any] = [
        total.label("total"),
        j.as_text(sessions).label("sessions"),
        j.as_text(therapist_ids).label("therapist_ids"),
        j.as_text(client_ids).label("client_ids"),
    ]
    if shape.therapists:
        visible = _visible(
            Therapist, therapist_scope_for(shape.scope), "therapist_ids", shape.dialect
        )
        columns.append(visible.label("therapists_visible"))
    if shape.clients:
        visible = _visible(Client, client_scope_for(shape.scope), "client_ids", shape.dialect)
        columns.append(visible.label("clients_visible"))
    # The caller as of this statement's snapshot (`Reading.as_caller`), as the session list's.
    answer = select(*columns).subquery("answer")
    caller = caller_row().subquery("caller")
    return select(
        answer, *(column.label(f"caller_{column.name}") for column in caller.c)
    ).select_from(answer.outerjoin(caller, true()))


def _visible(table: type[Therapist] | type[Client], scope: Any, ids: str, dialect: str) -> Any:
    """How many of the ids bound as `ids` (a list, `in_ids`) are rows of `table` within `scope`."""
    return (
        select(func.count())
        .select_from(table)
        .where(scope, in_ids(table.id, ids, dialect))
        .scalar_subquery()
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
    # A filtered therapist or client is every row's: its id is formatted from the parameter.
    fixed = {
        name: bindparam(name, type_=getattr(Session, name).type)
        for name, present in (("therapist_id", shape.therapist), ("client_id", shape.client))
        if present
    }
    listed = list(where)  # the summary's rows, the page's from the cursor on
    if shape.cursor:
        after = tuple_(
            bindparam("after_time", type_=UTCDateTime()), bindparam("after_id", type_=Uuid())
        )
        listed.append(tuple_(Session.start_time, Session.id) < after)
    page = session_rows(detailed=True, j=j, fixed=fixed).where(*listed).order_by(*newest_first)
    if not shape.cursor:
        page = page.offset(bindparam("offset"))
    if j.postgres:
        fetched = page.limit(bindparam("fetch")).cte("page")
        shown = (
            select(fetched)
            .order_by(fetched.c.start_time.desc(), fetched.c.id.desc())
            .limit(bindparam("limit"))
            .cte("shown")
        )
        fetched_count = select(func.count()).select_from(fetched)
    else:
        # SQLite materializes a CTE used twice: the page of `fetch` rows, then the shown ones
        # copied again and sorted. The shown rows alone, read in the index's order, and whether
        # another page follows counted by a probe of the same index range (the first `fetch`
        # rows in any order are as many), cost less (docs/DECISIONS.md, "The hot read path").
        shown = page.limit(bindparam("limit")).cte("shown")
        probe = select(Session.id).where(*listed)
        if not shape.cursor:
            probe = probe.offset(bindparam("offset"))
        fetched_count = select(func.count()).select_from(probe.limit(bindparam("fetch")).subquery())
    source: Any = shown
    authorization = None
    if shape.authorizations:
        source, authorization = with_authorization_block(j, shown)
    shown_order = (shown.c.start_time.desc(), shown.c.id.desc())
    sessions = j.array(
        session_json(j, shown, authorization=authorization, detailed=True), source, *shown_order
    )
    client_ids = j.array(id_text(j, shown, "client_id"), shown, *shown_order, scalars=True)
    last = (
        select(shown.c.start_time, shown.c.id)
        .order_by(shown.c.start_time, shown.c.id)
        .limit(number(1))
        .subquery()
    )

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
        fetched_count.scalar_subquery().label("fetched"),
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
