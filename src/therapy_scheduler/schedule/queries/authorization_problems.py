"""SQL of the authorization problems of get-schedule-data-batch's conflict candidates: uncovered
sessions and sessions beyond their service's approved units. A part of the authorization checks'
statement (`queries/conflicts.authorization_checks`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Date,
    FromClause,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import array

from therapy_scheduler.models import Authorization, AuthorizationService, Session
from therapy_scheduler.models.base import UTCDateTime


def authorization_problems(c: Any, day_count: int, dialect_name: str) -> Select[Any]:
    """Only the offending candidates: (id, client_id, authorization_id, service_code, uncovered).
    `uncovered`: no authorization, not approved, the session's local day outside its dates, or
    its service not among the authorization's services. Otherwise the session is beyond its
    approved units: the running sum of the units of its service's consuming sessions, in start
    order over the authorization's whole history, exceeds them.

    A session's local day is looked up in `day_count` consecutive ranges (bind parameters
    `day_<i>`, `day_start_<i>`, `day_end_<i>`: `local_days`), since SQLite has no time zone rules:
    a table of them joined on SQLite, arrays of them on PostgreSQL.

    `c`: a CTE of the candidates (the caller's statement, built once per request shape: its
    identity is the cache key of `_authorization_checks_statement`, since building the statement
    costs more than running it)."""
    local_day = _day_by_bucket if dialect_name == "postgresql" else _day_by_join
    day, with_days, *inside = local_day(c, day_count)
    shape = _per_pair if dialect_name == "postgresql" else _joined
    source, au, covered_id, approved_units, overspent = shape(c)
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
    beyond = and_(overspent, c.c.consumes_units.is_(True), units_up_to > approved_units)
    uncovered = or_(
        au.c.id.is_(None),
        au.c.status != "approved",
        covered_id.is_(None),
        day < au.c.start_date,
        day > au.c.end_date,
    )
    return (
        select(
            c.c.id,
            c.c.client_id,
            c.c.authorization_id,
            c.c.service_code,
            uncovered.label("uncovered"),
        )
        .select_from(with_days(source))
        .where(*inside, or_(uncovered, beyond))
    )


def _day_by_join(c: Any, day_count: int) -> tuple[Any, ...]:
    """The candidate's local day from a table of the days joined on its start (SQLite's shape),
    the function that joins that table to the candidates' source, and the conditions that keep
    the candidates within the days (none: the join keeps them). One SELECT of bound values per day
    (a VALUES list would make SQLAlchemy compile the statement again on every call)."""
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
    on = and_(local_day.c.day_start <= c.c.start_time, c.c.start_time < local_day.c.day_end)
    return local_day.c.day, lambda source: source.join(local_day, on)


def _day_by_bucket(c: Any, day_count: int) -> tuple[Any, ...]:
    """PostgreSQL's shape of `_day_by_join`: the days' ranges are consecutive, so the candidate's
    day is the one whose range starts last at or before its start (`width_bucket`: a binary search
    in the array of starts) instead of a test of every range per candidate; the candidates outside
    all of them are left out, as the join leaves them out."""
    days = array([bindparam(f"day_{i}", type_=Date) for i in range(day_count)])
    starts = array([bindparam(f"day_start_{i}", type_=UTCDateTime()) for i in range(day_count)])
    bucket = func.width_bucket(c.c.start_time, starts, type_=Integer)
    first = bindparam("day_start_0", type_=UTCDateTime())
    end = bindparam(f"day_end_{day_count - 1}", type_=UTCDateTime())
    return days[bucket], lambda source: source, first <= c.c.start_time, c.c.start_time < end


def _units_used(authorization_id: Any, service_code: Any, *until: Any) -> Any:
    """The units of the consuming sessions of one authorization's service (those matching `until`
    too): an index-only range of `ix_sessions_authorization_units`."""
    used = Session.__table__.alias("used")
    return (
        select(func.coalesce(func.sum(used.c.units), 0))
        .where(
            used.c.authorization_id == authorization_id,
            used.c.service_code == service_code,
            used.c.consumes_units.is_(True),
            *(condition(used) for condition in until),
        )
        .scalar_subquery()
    )


def _joined(c: Any) -> tuple[Any, Any, Any, Any, Any]:
    """SQLite's shape: each candidate joined to its authorization and service through their keys
    (its planner probes them), and the overspent services as a row-value IN list of the
    candidates' pairs. Returns the candidates joined, the authorization, the service's
    authorization id and approved units, and whether the candidate's service is overspent."""
    au = Authorization.__table__.alias("au")
    covered = AuthorizationService.__table__.alias("covered")
    source = c.outerjoin(au, au.c.id == c.c.authorization_id).outerjoin(
        covered,
        and_(
            covered.c.authorization_id == c.c.authorization_id,
            covered.c.service_code == c.c.service_code,
        ),
    )
    # Running sums are needed only for the services whose consuming sessions use more than their
    # approved units in all (units are never negative: no running sum of another exceeds them).
    # Written as row-value IN lists rather than joins, so that the planner starts from the
    # candidates' few (authorization, service) pairs and reaches the services and the sessions
    # through their indexes.
    svc = AuthorizationService.__table__.alias("svc")
    overspent = (
        select(svc.c.authorization_id, svc.c.service_code, svc.c.approved_units)
        .where(
            tuple_(svc.c.authorization_id, svc.c.service_code).in_(
                select(c.c.authorization_id, c.c.service_code)
            ),
            _units_used(svc.c.authorization_id, svc.c.service_code) > svc.c.approved_units,
        )
        .cte("overspent")
    )
    is_overspent = tuple_(c.c.authorization_id, c.c.service_code).in_(
        select(overspent.c.authorization_id, overspent.c.service_code)
    )
    return source, au, covered.c.authorization_id, covered.c.approved_units, is_overspent


def _per_pair(c: Any) -> tuple[Any, Any, Any, Any, Any]:
    """PostgreSQL's shape (returns what `_joined` does): the candidates' distinct authorizations
    and distinct (authorization, service) pairs, each looked up once by primary key (a LATERAL
    subquery with LIMIT 1, which the planner keeps as one: its planner hashes whole tables once a
    few hundred candidates make index probes look dearer), each pair with whether it is
    overspent, in MATERIALIZED CTEs the candidates are hash-joined to (docs/DECISIONS.md, "The hot
    read path": "On PostgreSQL the week's authorization checks look up each authorization and each
    (authorization, service) once"). A week's ≈ 870 candidates name ≈ 410 authorizations and
    ≈ 570 pairs.

    A pair is overspent here when the units of its consuming sessions up to its last candidate's
    start exceed the approved ones: the running sum up to any of its candidates is at most that
    (units are never negative), so no other pair holds a candidate beyond its units, and the sum
    reads only the sessions up to the week's (the sessions of the pair's later weeks are not)."""
    pairs = (
        select(
            c.c.authorization_id,
            c.c.service_code,
            func.max(c.c.start_time).label("last_start"),
        )
        .group_by(c.c.authorization_id, c.c.service_code)
        .subquery("pairs")
    )
    svc = _by_key(
        AuthorizationService.__table__,
        "svc",
        authorization_id=pairs.c.authorization_id,
        service_code=pairs.c.service_code,
    )
    used = _units_used(
        pairs.c.authorization_id,
        pairs.c.service_code,
        lambda used: used.c.start_time <= pairs.c.last_start,
    )
    pair = (
        select(
            pairs.c.authorization_id,
            pairs.c.service_code,
            svc.c.authorization_id.label("covered_id"),
            svc.c.approved_units,
            (used > svc.c.approved_units).label("overspent"),
        )
        .select_from(pairs.outerjoin(svc, true()))
        .cte("pair")
        .prefix_with("MATERIALIZED")
    )
    ids = select(c.c.authorization_id).distinct().subquery("ids")
    found = _by_key(Authorization.__table__, "found", id=ids.c.authorization_id)
    au = (
        select(found.c.id, found.c.status, found.c.start_date, found.c.end_date)
        .select_from(ids.join(found, true()))
        .cte("au")
        .prefix_with("MATERIALIZED")
    )
    source = c.outerjoin(au, au.c.id == c.c.authorization_id).outerjoin(
        pair,
        and_(
            pair.c.authorization_id == c.c.authorization_id,
            pair.c.service_code == c.c.service_code,
        ),
    )
    return source, au, pair.c.covered_id, pair.c.approved_units, pair.c.overspent.is_(True)


def _by_key(table: FromClause, name: str, **key: Any) -> Any:
    """`table`'s row of `key` (column name → value) as a LATERAL subquery named `name`, to join
    on true: one probe of its primary key per outer row."""
    row = select(table).where(*(table.c[column] == value for column, value in key.items()))
    return row.limit(1).lateral(name)
