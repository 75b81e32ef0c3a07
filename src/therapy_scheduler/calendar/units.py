"""Authorization units: approved minus what sessions consume and what active holds reserve."""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.domain.vocab import SERVICE_CODES
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models import Authorization, AuthorizationService, HoldOccurrence, Session

UnitKey = tuple[uuid.UUID, str]  # (authorization_id, service_code)

# `WITH … AS MATERIALIZED` exists from SQLite 3.35 (2021); older libraries plan it their own way.
_SQLITE_MATERIALIZES = sqlite3.sqlite_version_info >= (3, 35, 0)


@dataclass(frozen=True)
class UnitBalance:
    approved: int
    unit_minutes: int
    consumed: int
    reserved: int
    # The service's weekly cap (docs/ADMIN.md), in units or in minutes; None: no cap.
    weekly_cap_units: int | None = None
    weekly_cap_minutes: int | None = None

    @property
    def remaining(self) -> int:
        return self.approved - self.consumed - self.reserved


def session_units(minutes: float, unit_minutes: int) -> int:
    """A session's units: its duration divided by the service's unit length, rounded up."""
    return math.ceil(minutes / unit_minutes)


def default_unit_minutes(service_code: str) -> int:
    service = SERVICE_CODES.get(service_code)
    return service.unit_minutes if service else 15


def _used_units(svc: Any) -> tuple[Any, Any]:
    """Correlated sums for the (authorization, service) rows of `svc` (an authorization_services
    alias): units consumed by sessions and units reserved by active holds (bind parameter `now`).
    Each reads only its own index range (`ix_sessions_authorization_units`,
    `ix_hold_occurrences_authorization`)."""
    consumed = (
        select(func.coalesce(func.sum(Session.units), 0))
        .where(
            Session.authorization_id == svc.c.authorization_id,
            Session.service_code == svc.c.service_code,
            Session.consumes_units.is_(True),
        )
        .scalar_subquery()
    )
    reserved = (
        select(func.coalesce(func.sum(HoldOccurrence.units), 0))
        .where(
            HoldOccurrence.authorization_id == svc.c.authorization_id,
            HoldOccurrence.service_code == svc.c.service_code,
            HoldOccurrence.active.is_(True),
            HoldOccurrence.expires_at > bindparam("now"),
        )
        .scalar_subquery()
    )
    return consumed, reserved


def balances_of(pairs: Any, *extra: Any) -> Any:
    """CTE (authorization_id, service_code, end_date, remaining) with one row per row of `pairs` (a
    FROM of distinct (authorization_id, service_code)): the authorization's end date and
    `UnitBalance.remaining` (NULL when the authorization does not cover the service), each found by
    index lookups once per pair, however many sessions of the page share it. Materialized, so that
    neither planner folds it into the join and evaluates the lookups per joined row (SQLite would,
    twice per row: once per use of `remaining`). `extra`: labelled columns over `pairs` computed
    once per pair as well (SQLite: the authorization's id in canonical form)."""
    consumed, reserved = _used_units(pairs)
    approved = (
        select(AuthorizationService.approved_units)
        .where(
            AuthorizationService.authorization_id == pairs.c.authorization_id,
            AuthorizationService.service_code == pairs.c.service_code,
        )
        .scalar_subquery()
    )
    end_date = (
        select(Authorization.end_date)
        .where(Authorization.id == pairs.c.authorization_id)
        .scalar_subquery()
    )
    return (
        select(
            pairs.c.authorization_id,
            pairs.c.service_code,
            end_date.label("end_date"),
            (approved - consumed - reserved).label("remaining"),
            *extra,
        )
        .cte("balance")
        .prefix_with("MATERIALIZED", dialect="postgresql")
        .prefix_with("MATERIALIZED" if _SQLITE_MATERIALIZES else "", dialect="sqlite")
    )


def balance_rows(ids_filter: Any) -> Any:
    """One row per (authorization, service) of the given authorizations (one row with NULL service
    columns for an authorization without services): approved units, what consuming sessions used,
    what active holds reserve, and the authorization's dates and status, in one round trip."""
    svc = AuthorizationService.__table__.alias("svc")
    consumed, reserved = _used_units(svc)
    return (
        select(
            Authorization.id,
            Authorization.start_date,
            Authorization.end_date,
            Authorization.status,
            svc.c.service_code,
            svc.c.approved_units,
            svc.c.unit_minutes,
            svc.c.weekly_cap_units,
            svc.c.weekly_cap_minutes,
            consumed.label("consumed"),
            reserved.label("reserved"),
        )
        .select_from(Authorization)
        .outerjoin(svc, svc.c.authorization_id == Authorization.id)
        .where(ids_filter)
    )


# Built once: SQLAlchemy then reuses its cache key and compiled form on every call. On PostgreSQL the
# ids go as one array parameter (`= ANY($1)`): the SQL text is the same whatever their number, so the
# server-side prepared statement (and its plan) is reused instead of prepared again for each count.
_BALANCE_ROWS = {
    "postgresql": balance_rows(
        Authorization.id == any_(bindparam("ids", type_=postgresql.ARRAY(Uuid())))
    ),
    "sqlite": balance_rows(Authorization.id.in_(bindparam("ids", expanding=True))),
}


async def balances_and_end_dates(
    conn: AsyncConnection, authorization_ids: Iterable[uuid.UUID], now: datetime
) -> tuple[dict[UnitKey, UnitBalance], dict[uuid.UUID, tuple[date, date, str]]]:
    """The balance of every service of the given authorizations, and each authorization's
    (start date, end date, status), in one query whatever their number."""
    ids = list(set(authorization_ids))
    if not ids:
        return {}, {}
    statement = _BALANCE_ROWS.get(conn.dialect.name, _BALANCE_ROWS["sqlite"])
    return collect_balances(
        await driver_read(statement, conn.dialect).all(conn, {"ids": ids, "now": now})
    )


def collect_balances(
    rows: Iterable[Any],
) -> tuple[dict[UnitKey, UnitBalance], dict[uuid.UUID, tuple[date, date, str]]]:
    """The balances and the (start date, end date, status) of the rows of `balance_rows`."""
    balances: dict[UnitKey, UnitBalance] = {}
    ends: dict[uuid.UUID, tuple[date, date, str]] = {}
    for r in rows:
        ends[r.id] = (r.start_date, r.end_date, r.status)
        if r.service_code is not None:
            balances[(r.id, r.service_code)] = UnitBalance(
                r.approved_units,
                r.unit_minutes,
                int(r.consumed or 0),
                int(r.reserved or 0),
                r.weekly_cap_units,
                r.weekly_cap_minutes,
            )
    return balances, ends


async def unit_balances(
    conn: AsyncConnection, authorization_ids: Iterable[uuid.UUID], now: datetime
) -> dict[UnitKey, UnitBalance]:
    """Balances of every service of the given authorizations, in one query whatever their number."""
    return (await balances_and_end_dates(conn, authorization_ids, now))[0]
