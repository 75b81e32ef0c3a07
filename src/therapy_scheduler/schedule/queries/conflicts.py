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
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import therapist_scope
from therapy_scheduler.calendar.availability import busy_sessions, busy_values
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models import Session, Therapist
from therapy_scheduler.models.base import UTCDateTime
from therapy_scheduler.schedule.queries.authorization_problems import authorization_problems
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
    """The statement of `busy_with_candidates`, built once per shape and dialect. Only the
    organization's sessions: it may run before the page statement has checked the therapists'
    ids (schedule/service.py), and a guessed id of another organization's therapist reads
    nothing."""
    return (
        busy_sessions(shape.dialect)
        .where(Session.organization_id == bindparam("scope_organization_id"))
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
    """The union of `queries/authorization_problems.py` and `queries/caps.capped_sessions` over
    one CTE of the candidates, in the columns of `AuthorizationCheck` (built once per candidates
    statement and number of days, like its parts)."""
    # Whether a candidate consumes units: only those can be beyond their service's units.
    c = candidates.add_columns(Session.consumes_units).cte("candidates")
    none = null()
    problems = authorization_problems(c, day_count, dialect_name).add_columns(
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
