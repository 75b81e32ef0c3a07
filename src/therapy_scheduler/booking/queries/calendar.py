"""What a booking is checked against: the therapist, the client, their busy time and authorizations."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import ScopeKind, client_scope_for, scope_kind, scope_params
from therapy_scheduler.booking.queries.holds import ACTIVE_HOLDS, EXPIRED_OF_PEOPLE
from therapy_scheduler.calendar.availability import (
    TherapistCalendar,
    calendar_statement,
    calendar_values,
    calendars_from_rows,
)
from therapy_scheduler.calendar.units import UnitBalance, UnitKey, balance_rows, collect_balances
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import (
    MAX_SESSION_LENGTH,
    Authorization,
    AuthorizationService,
    Client,
    Hold,
    HoldOccurrence,
    Location,
    Session,
    Therapist,
)


@dataclass(frozen=True)
class Busy:
    """Something already occupying a therapist's or client's time."""

    kind: str  # "session" | "hold"
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    start: datetime
    end: datetime
    location_id: uuid.UUID | None
    location_type: str | None
    # The row (session or hold occurrence), its service and whom it supervises (migration 0006).
    id: uuid.UUID | None = None
    service_code: str | None = None
    supervises: str | None = None


@functools.cache
def _people_query(kind: ScopeKind, with_holds: bool, with_calendar: bool, dialect_name: str) -> Any:
    """The statement of `people`, built once per variant and dialect."""
    query = (
        select(
            Therapist.status.label("therapist_status"),
            Therapist.archived_at.label("therapist_archived_at"),
            Therapist.time_zone,
            Client.id.label("client_id"),
            Client.status.label("client_status"),
            Client.archived_at.label("client_archived_at"),
        )
        .select_from(Therapist)
        .outerjoin(Client, and_(Client.id == bindparam("client_id"), client_scope_for(kind)))
        .where(
            Therapist.id == bindparam("therapist_id"),
            Therapist.organization_id == bindparam("organization_id"),
        )
    )
    if with_holds:
        mine = ACTIVE_HOLDS.with_only_columns(
            func.count().label("active_holds"), func.min(Hold.expires_at).label("next_expiry")
        ).subquery("mine")
        query = query.add_columns(mine.c.active_holds, mine.c.next_expiry).join(mine, true())
    if with_calendar:
        # The therapist's working hours and time off, one row each (calendar/availability.py),
        # the people's columns repeated on every row; one row with NULL calendar columns when
        # there are none. Its last columns, in `calendar_statement`'s order.
        rows = calendar_statement(False, False, dialect_name).subquery("cal")
        query = query.add_columns(
            *(column.label(f"cal_{i}") for i, column in enumerate(rows.c))
        ).outerjoin(rows, true())
    return query


_CALENDAR_COLUMNS = len(calendar_statement(False, False).selected_columns)


async def people(
    conn: AsyncConnection,
    principal: Principal,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    holds_at: datetime | None = None,
    calendar: tuple[datetime, datetime] | None = None,
) -> tuple[Row[Any] | None, TherapistCalendar | None]:
    """The therapist of the caller's organization (None if there is none) with, in the same row, the
    client if the caller may see them (else the client columns are NULL); with `holds_at`, also the
    caller's holds that still block at that instant (`active_holds`, `next_expiry`, as
    `check_active_holds_last` counts them); with `calendar` (`[start, end)`), also the therapist's
    calendar of working hours and time off for that range (as `load_calendars` reads it without
    busy time, None without the therapist). One round trip."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "organization_id": principal.organization_id,
        **scope_params(principal),
    }
    if holds_at is not None:
        params.update(now=holds_at, user_id=principal.user_id)
    query = _people_query(
        scope_kind(principal), holds_at is not None, calendar is not None, conn.dialect.name
    )
    read = driver_read(query, conn.dialect)
    if calendar is None:
        return await read.first(conn, params), None
    now = holds_at or utcnow()
    params |= calendar_values(principal.organization_id, [therapist_id], *calendar, now)
    rows = await read.all(conn, params)
    if not rows:
        return None, None
    calendars, _ = calendars_from_rows(
        [row[-_CALENDAR_COLUMNS:] for row in rows], {therapist_id: rows[0].time_zone}
    )
    return rows[0], calendars[therapist_id]


async def location(
    conn: AsyncConnection, organization_id: uuid.UUID, location_id: uuid.UUID
) -> Row[uuid.UUID, str, bool] | None:
    return (
        await conn.execute(
            select(Location.id, Location.location_type, Location.is_active).where(
                Location.id == location_id, Location.organization_id == organization_id
            )
        )
    ).first()


# The statements of every hold are built once (SQLAlchemy reuses their cache key and compiled form).


def _busy_query(*, excluding: bool, expired: bool = False) -> Any:
    """Sessions and holds of the therapist and of the client in `[lower, upper)`, as one UNION ALL
    (one round trip for the four reads); with `expired`, also their hold occurrences that expired
    but are still `active` (kind "expired", at any time: `deactivate_expired_holds` closes them)."""
    # Untyped: each comparison gives its parameter the column's type.
    lower: Any = bindparam("lower")
    upper: Any = bindparam("upper")
    parts = []
    for who in ("therapist_id", "client_id"):
        person_id: Any = bindparam(who)
        session_filter = [
            getattr(Session, who) == person_id,
            Session.status != "cancelled",
            Session.start_time < upper,
            Session.end_time > lower,
            Session.start_time > bindparam("floor"),  # index lower bound (implied)
        ]
        if excluding:
            session_filter.append(Session.id != bindparam("exclude_session_id"))
        parts.append(
            select(
                literal("session").label("kind"),
                Session.therapist_id,
                Session.client_id,
                Session.start_time,
                Session.end_time,
                Session.location_id,
                Session.location_type,
                Session.id,
                Session.service_code,
                Session.supervises,
            ).where(*session_filter)
        )
        parts.append(
            _hold_rows("hold").where(
                getattr(HoldOccurrence, who) == person_id,
                HoldOccurrence.active.is_(True),
                HoldOccurrence.expires_at > bindparam("now"),
                HoldOccurrence.start_time < upper,
                HoldOccurrence.end_time > lower,
            )
        )
    if expired:
        parts.append(_hold_rows("expired").where(*EXPIRED_OF_PEOPLE))
    return union_all(*parts)


def _hold_rows(kind: str) -> Any:
    """Hold occurrences in the columns of `_busy_query`'s session rows, marked `kind`."""
    return select(
        literal(kind).label("kind"),
        HoldOccurrence.therapist_id,
        HoldOccurrence.client_id,
        HoldOccurrence.start_time,
        HoldOccurrence.end_time,
        Hold.location_id,
        Hold.location_type,
        HoldOccurrence.id,
        HoldOccurrence.service_code,
        HoldOccurrence.supervises,
    ).join(Hold, Hold.id == HoldOccurrence.hold_id)


_BUSY = {
    (excluding, expired): _busy_query(excluding=excluding, expired=expired)
    for excluding in (False, True)
    for expired in (False, True)
}


async def busy_and_expired(
    conn: AsyncConnection,
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    lower: datetime,
    upper: datetime,
    now: datetime,
    exclude_session_id: uuid.UUID | None = None,
    expired: bool = True,
) -> tuple[list[Busy], list[uuid.UUID]]:
    """Non-cancelled sessions and active, unexpired hold occurrences of the therapist or the client
    that overlap `[lower, upper)` and, in the same round trip, the ids of the people's hold
    occurrences that expired at `now` but are still `active` (with `expired`; else none), which the
    booking deactivates (`holds.deactivate_expired_holds`) only when there are any."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "lower": lower,
        "upper": upper,
        "floor": lower - MAX_SESSION_LENGTH,
        "now": now,
        "exclude_session_id": exclude_session_id,
    }
    rows = await driver_read(_BUSY[exclude_session_id is not None, expired], conn.dialect).all(
        conn, params
    )
    out: list[Busy] = []
    stale: list[uuid.UUID] = []
    for r in rows:
        if r.kind == "expired":
            stale.append(r.id)
        else:
            out.append(Busy(*r))
    # A row of this therapist *and* client was read twice; keep one.
    return sorted(set(out), key=lambda b: (b.start, b.end, b.kind)), stale


@dataclass(frozen=True)
class Coverage:
    authorization_id: uuid.UUID
    start_date: date
    end_date: date
    unit_minutes: int


def _covering() -> Any:
    """The approved authorizations of the client for this service that touch the day range."""
    a = aliased(Authorization, name="covering")
    s = aliased(AuthorizationService, name="covering_service")
    return (
        select(a.id)
        .join(s, s.authorization_id == a.id)
        .where(
            a.client_id == bindparam("client_id"),
            a.status == "approved",
            a.start_date <= bindparam("last_day"),
            a.end_date >= bindparam("first_day"),
            s.service_code == bindparam("service_code"),
        )
    )


# Built once (SQLAlchemy reuses its cache key and compiled form).
_COVERAGES_AND_BALANCES = balance_rows(Authorization.id.in_(_covering()))


async def coverages_and_balances(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    service_code: str,
    first_day: date,
    last_day: date,
    now: datetime,
) -> tuple[list[Coverage], dict[UnitKey, UnitBalance]]:
    """Approved authorizations of the client for this service that touch the day range, soonest
    ending first (units that expire first are spent first), and the balances of all their services
    at `now`, in one statement. The balances change with every booking of the client: read them
    under the client's lock, in a statement that starts after it was granted."""
    params = {
        "client_id": client_id,
        "service_code": service_code,
        "first_day": first_day,
        "last_day": last_day,
        "now": now,
    }
    rows = await driver_read(_COVERAGES_AND_BALANCES, conn.dialect).all(conn, params)
    balances, _ = collect_balances(rows)
    coverages = sorted(
        (
            Coverage(r.id, r.start_date, r.end_date, r.unit_minutes)
            for r in rows
            if r.service_code == service_code
        ),
        key=lambda c: (c.end_date, c.authorization_id),
    )
    return coverages, balances
