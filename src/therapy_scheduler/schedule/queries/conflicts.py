"""SQL of the availability and conflicts of get-schedule-data-batch (SQLAlchemy Core): which
therapists the caller may see, the range's conflict candidates, and the authorization checks."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    CompoundSelect,
    Date,
    FromClause,
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import therapist_scope
from therapy_scheduler.calendar.availability import busy_sessions, busy_values
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models import Authorization, AuthorizationService, Session, Therapist
from therapy_scheduler.models.base import UTCDateTime
from therapy_scheduler.schedule.queries.caps import capped_sessions
from therapy_scheduler.schedule.queries.pages import RangeShape, range_filter
from therapy_scheduler.schedule.queries.supervision import standing_alone

Statement = Select[*tuple[Any, ...]]  # a SELECT of any columns

# What the conflicts need of a session besides its therapist and times.
CONFLICT_COLUMNS = (
    Session.id,
    Session.client_id,
    Session.location_id,
    Session.location_type,
    Session.authorization_id,
    Session.service_code,
)


class ConflictSession(NamedTuple):
    """A session the conflicts look at: the columns of `conflict_candidates` and `standing_alone()`,
    then whether it is a conflict candidate (`candidate`: always for `candidate_rows`; among the
    busy sessions of `busy_with_candidates`, those of the range). The rows are read into plain named
    tuples: the conflict rules read ≈ 15 fields of each of a week's ≈ 2,000 sessions, and a field
    of a named tuple costs a fraction of a result row's attribute lookup (docs/PERFORMANCE.md,
    "schedule_week")."""

    therapist_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    id: uuid.UUID
    client_id: uuid.UUID
    location_id: uuid.UUID | None
    location_type: str | None
    authorization_id: uuid.UUID | None
    service_code: str
    alone: str | None  # the code a supervising session standing alone supervises, else None
    candidate: bool


class AuthorizationCheck(NamedTuple):
    """A row of the authorization checks (`authorization_checks`, a named tuple like `ConflictSession`).
    Kind "a": an offending candidate (`end_time` and the rest None); "w": a session of a service
    with a weekly cap."""

    id: uuid.UUID
    client_id: uuid.UUID
    authorization_id: uuid.UUID | None
    service_code: str
    uncovered: bool
    start_time: datetime
    end_time: datetime | None
    units: int | None
    weekly_cap_units: int | None
    weekly_cap_minutes: int | None
    kind: str


async def visible_therapist_ids(
    conn: AsyncConnection, principal: Principal, therapist_ids: list[uuid.UUID]
) -> Sequence[uuid.UUID]:
    """Those of the given therapists that the caller may see (a therapist: only themselves)."""
    return (
        (
            await conn.execute(
                select(Therapist.id).where(
                    therapist_scope(principal), Therapist.id.in_(therapist_ids)
                )
            )
        )
        .scalars()
        .all()
    )


async def busy_with_candidates(
    conn: AsyncConnection,
    therapist_ids: list[uuid.UUID],
    range_start: datetime,
    range_end: datetime,
    shape: RangeShape,
    values: dict[str, Any],
) -> Sequence[ConflictSession]:
    """The busy sessions of these therapists for the calendars of the range (`busy_sessions`) with
    the columns of a conflict candidate and `candidate`: whether the session is one (in
    `range_filter(shape)` with `values`, not cancelled), ordered by start and id."""
    dialect = conn.dialect
    # The week's biggest row set: read on the driver (infra/driver_read.py).
    return await driver_read(_busy_with_candidates_statement(shape), dialect).all(
        conn, values | busy_values(therapist_ids, range_start, range_end), ConflictSession._make
    )


@functools.lru_cache(maxsize=64)
def _busy_with_candidates_statement(shape: RangeShape) -> Statement:
    """The statement of `busy_with_candidates`, built once per shape and dialect."""
    return (
        busy_sessions(shape.dialect)
        .add_columns(
            *CONFLICT_COLUMNS,
            standing_alone(),
            and_(*range_filter(shape)).label("candidate"),
        )
        .order_by(Session.start_time, Session.id)
    )


@functools.lru_cache(maxsize=64)
def conflict_candidates(shape: RangeShape) -> Statement:
    """The conflict candidates: the range's non-cancelled sessions (built once per shape, so that
    the authorization check built on it is cached too, see `authorization_problems`)."""
    return (
        select(Session.therapist_id, Session.start_time, Session.end_time)
        .add_columns(*CONFLICT_COLUMNS)
        .where(*range_filter(shape), Session.status != "cancelled")
    )


async def candidate_rows(
    conn: AsyncConnection, candidates: Statement, values: dict[str, Any]
) -> list[ConflictSession]:
    """The rows of `conflict_candidates(shape)` with `values` and `standing_alone()`, ordered by
    start and id."""
    result = await conn.execute(
        candidates.add_columns(standing_alone(), true().label("candidate")).order_by(
            Session.start_time, Session.id
        ),
        values,
    )
    return list(map(ConflictSession._make, result))


async def authorization_checks(
    conn: AsyncConnection,
    candidates: Statement,
    candidate_values: dict[str, Any],
    days: list[tuple[date, datetime, datetime]],
    weeks: tuple[datetime, datetime],
) -> tuple[list[AuthorizationCheck], list[AuthorizationCheck]]:
    """In one statement: the candidates (`candidates` with `candidate_values`) that no approved
    authorization covers or that go beyond their service's approved units (`kind` "a", ordered by
    start; `days`: the local date of every instant of the candidates' range, as consecutive UTC
    ranges, `local_days`), and the unit-spending sessions starting within `weeks` (UTC bounds of
    whole local weeks) of the candidates' authorized services that carry a weekly cap, with the
    cap (`kind` "w", ordered by start: `queries/caps.py`)."""
    values = dict(candidate_values)
    for i, (day, start, end) in enumerate(days):
        values |= {f"day_{i}": day, f"day_start_{i}": start, f"day_end_{i}": end}
    values["week_lower"], values["week_upper"] = weeks
    statement = _authorization_checks_statement(candidates, len(days), conn.dialect.name)
    problems: list[AuthorizationCheck] = []
    capped: list[AuthorizationCheck] = []
    for row in map(AuthorizationCheck._make, await conn.execute(statement, values)):
        (problems if row.kind == "a" else capped).append(row)
    return problems, capped


@functools.lru_cache(maxsize=256)
def _authorization_checks_statement(
    candidates: Statement, day_count: int, dialect_name: str
) -> CompoundSelect[Any]:
    """The union of `_authorization_problems_statement` and `queries/caps.capped_sessions` over one
    CTE of the candidates, in the columns of `AuthorizationCheck` (built once per candidates
    statement and number of days, like its parts)."""
    # Whether a candidate consumes units: only those can be beyond their service's units.
    c = candidates.add_columns(Session.consumes_units).cte("candidates")
    none = null()
    problems = _authorization_problems_statement(c, day_count, dialect_name).add_columns(
        c.c.start_time,
        cast(none, UTCDateTime()).label("end_time"),
        cast(none, Integer).label("units"),
        cast(none, Integer).label("weekly_cap_units"),
        cast(none, Integer).label("weekly_cap_minutes"),
        literal("a").label("kind"),
    )
    weekly = capped_sessions(c)
    union = union_all(problems, weekly)
    columns = union.selected_columns
    return union.order_by(columns.kind, columns.start_time, columns.id)


def _authorization_problems_statement(c: Any, day_count: int, dialect_name: str) -> Statement:
    """Only the offending candidates, ordered by start: (id, client_id, authorization_id,
    service_code, uncovered). `uncovered`: no authorization, not approved, the session's local day
    outside its dates, or its service not among the authorization's services. Otherwise the
    session is beyond its approved units: the running sum of the units of its service's consuming
    sessions, in start order over the authorization's whole history, exceeds them.

    A session's local day is looked up in a table of `day_count` rows (bind parameters `day_<i>`,
    `day_start_<i>`, `day_end_<i>`: `local_days`), since SQLite has no time zone rules.

    `c`: a CTE of the candidates (the caller's statement, built once per request shape: its
    identity is the cache key of `_authorization_checks_statement`, since building the statement
    costs more than running it)."""
    # One SELECT of bound values per day (a VALUES list would make SQLAlchemy compile the
    # statement again on every call).
    local_day = union_all(
        *(
            select(
                bindparam(f"day_{i}", type_=Date).label("day"),
                bindparam(f"day_start_{i}", type_=UTCDateTime()).label("day_start"),
                bindparam(f"day_end_{i}", type_=UTCDateTime()).label("day_end"),
            )
            for i in range(day_count)
        )
    ).cte("local_days")
    # Each candidate's authorization and service: on PostgreSQL looked up per candidate through
    # their primary keys (a LATERAL subquery with LIMIT 1, which the planner keeps as one), so that
    # the statement reads what the week's candidates name, not every authorization of the
    # organization: its planner hashes whole tables once a few hundred candidates make index
    # probes look dearer (docs/PERFORMANCE.md, "schedule_week"). SQLite joins through the keys.
    au, au_key = _by_key(Authorization.__table__, "au", dialect_name, id=c.c.authorization_id)
    covered, covered_key = _by_key(
        AuthorizationService.__table__,
        "covered",
        dialect_name,
        authorization_id=c.c.authorization_id,
        service_code=c.c.service_code,
    )
    svc = AuthorizationService.__table__.alias("svc")
    # Running sums are needed only for the services whose consuming sessions use more than their
    # approved units in all (units are never negative: no running sum of another exceeds them).
    used = Session.__table__.alias("used")
    consumed = (
        select(func.coalesce(func.sum(used.c.units), 0))
        .where(
            used.c.authorization_id == svc.c.authorization_id,
            used.c.service_code == svc.c.service_code,
            used.c.consumes_units.is_(True),
        )
        .scalar_subquery()
    )
    # Written as row-value IN lists rather than joins, so that both planners (SQLite's above all)
    # start from the candidates' few (authorization, service) pairs and reach the services and
    # the sessions through their indexes.
    pairs = select(c.c.authorization_id, c.c.service_code)
    overspent = (
        select(svc.c.authorization_id, svc.c.service_code, svc.c.approved_units)
        .where(
            tuple_(svc.c.authorization_id, svc.c.service_code).in_(pairs),
            consumed > svc.c.approved_units,
        )
        .cte("overspent")
    )
    # A candidate of an overspent service is beyond its units when the units of its service's
    # consuming sessions up to it (in start order, then id: the order of a running sum) exceed
    # them. Summed per such candidate through the service's index: a running sum over every
    # consuming session of the overspent services made PostgreSQL's planner, which expects many
    # overspent services where there are a few, read the whole table (docs/PERFORMANCE.md,
    # "schedule_week").
    upto = Session.__table__.alias("upto")
    units_up_to = (
        select(func.sum(upto.c.units))
        .where(
            upto.c.authorization_id == c.c.authorization_id,
            upto.c.service_code == c.c.service_code,
            upto.c.consumes_units.is_(True),
            or_(
                upto.c.start_time < c.c.start_time,
                and_(upto.c.start_time == c.c.start_time, upto.c.id <= c.c.id),
            ),
        )
        .scalar_subquery()
    )
    beyond = and_(
        tuple_(c.c.authorization_id, c.c.service_code).in_(
            select(overspent.c.authorization_id, overspent.c.service_code)
        ),
        c.c.consumes_units.is_(True),
        units_up_to > covered.c.approved_units,
    )

    uncovered = or_(
        au.c.id.is_(None),
        au.c.status != "approved",
        covered.c.authorization_id.is_(None),
        local_day.c.day < au.c.start_date,
        local_day.c.day > au.c.end_date,
    )
    return (
        select(
            c.c.id,
            c.c.client_id,
            c.c.authorization_id,
            c.c.service_code,
            uncovered.label("uncovered"),
        )
        .select_from(
            c.outerjoin(au, au_key)
            .outerjoin(covered, covered_key)
            .join(
                local_day,
                and_(local_day.c.day_start <= c.c.start_time, c.c.start_time < local_day.c.day_end),
            )
        )
        .where(or_(uncovered, beyond))
    )


def _by_key(table: FromClause, name: str, dialect_name: str, **key: Any) -> tuple[Any, Any]:
    """`table` as `name` and the condition that joins its row of `key` (column name → value): on
    PostgreSQL that one row as a LATERAL subquery (the condition inside it), elsewhere the table."""
    if dialect_name != "postgresql":
        alias = table.alias(name)
        return alias, and_(*(alias.c[column] == value for column, value in key.items()))
    row = select(table).where(*(table.c[column] == value for column, value in key.items()))
    return row.limit(1).lateral(name), true()
