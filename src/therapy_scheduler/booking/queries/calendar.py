"""What a booking is checked against: the therapist, the client, their busy time and authorizations."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import ScopeKind, client_scope_for, scope_kind, scope_params
from therapy_scheduler.booking.queries.holds import ACTIVE_HOLDS, EXPIRED_OF_PEOPLE
from therapy_scheduler.booking.rules.locks import advisory_locks
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
def _people_query(
    kind: ScopeKind, with_holds: bool, with_calendar: bool, dialect_name: str, locks: int = 0
) -> Any:
    """The statement of `people`, built once per variant, dialect and number of locks."""
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
    if locks:
        # Taken once (a materialized CTE) and only for people of the caller's organization: a
        # guessed id of another clinic's therapist or client locks nothing. Its columns come
        # before the calendar's, which end the row.
        therapist, client = aliased(Therapist), aliased(Client)
        ours = exists().where(
            therapist.id == bindparam("therapist_id"),
            therapist.organization_id == bindparam("organization_id"),
        ) & exists().where(
            client.id == bindparam("client_id"),
            client.organization_id == bindparam("organization_id"),
        )
        taken = (
            select(*advisory_locks(locks, "lock"))
            .where(ours)
            .cte("locks")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        query = query.add_columns(*taken.c).outerjoin(taken, true())
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
    lock_keys: Sequence[int] = (),
) -> tuple[Row[Any] | None, TherapistCalendar | None]:
    """The therapist of the caller's organization (None if there is none) with, in the same row, the
    client if the caller may see them (else the client columns are NULL); with `holds_at`, also the
    caller's holds that still block at that instant (`active_holds`, `next_expiry`, as
    `check_active_holds_last` counts them); with `calendar` (`[start, end)`), also the therapist's
    calendar of working hours and time off for that range (as `load_calendars` reads it without
    busy time, None without the therapist). With `lock_keys` (PostgreSQL), the statement also takes
    those advisory locks, in their order, when both people belong to the organization: what it
    reads is then as it was before they were granted (its snapshot), as what is read before the
    people's locks is in any case (docs/BOOKING.md, "Concurrency"). One round trip."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "organization_id": principal.organization_id,
        **scope_params(principal),
    }
    if holds_at is not None:
        params.update(now=holds_at, user_id=principal.user_id)
    if conn.dialect.name != "postgresql":
        lock_keys = ()
    params.update({f"lock{i}": key for i, key in enumerate(lock_keys)})
    query = _people_query(
        scope_kind(principal),
        holds_at is not None,
        calendar is not None,
        conn.dialect.name,
        len(lock_keys),
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


def _covering_ids() -> Any:
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


# The rows of `_SURROUNDINGS`: kind, then a busy row's columns (`Busy`), then a balance row's
# (`balance_rows`, after its id and service code, which stand in the busy row's `id` and
# `service_code`); each kind of row has NULL in the other kind's columns.
_BUSY_COLUMNS = (
    Session.therapist_id,
    Session.client_id,
    Session.start_time,
    Session.end_time,
    Session.location_id,
    Session.location_type,
    Session.id,
    Session.service_code,
    Session.supervises,
)
_BALANCE = balance_rows(Authorization.id.in_(_covering_ids())).subquery("balance")
_BALANCE_COLUMNS = (
    _BALANCE.c.start_date,
    _BALANCE.c.end_date,
    _BALANCE.c.status,
    _BALANCE.c.approved_units,
    _BALANCE.c.unit_minutes,
    _BALANCE.c.weekly_cap_units,
    _BALANCE.c.weekly_cap_minutes,
    _BALANCE.c.consumed,
    _BALANCE.c.reserved,
)
_NO_BALANCE = tuple(cast(null(), c.type).label(c.key) for c in _BALANCE_COLUMNS)


def _busy_parts(*, excluding: bool, expired: bool) -> list[Any]:
    """Sessions and holds of the therapist and of the client in `[lower, upper)` (four reads); with
    `expired`, also their hold occurrences that expired but are still `active` (kind "expired", at
    any time: `deactivate_expired_holds` closes them)."""
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
            select(literal("session").label("kind"), *_BUSY_COLUMNS, *_NO_BALANCE).where(
                *session_filter
            )
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
    return parts


def _hold_rows(kind: str) -> Any:
    """Hold occurrences in the columns of the session rows, marked `kind`."""
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
        *_NO_BALANCE,
    ).join(Hold, Hold.id == HoldOccurrence.hold_id)


def _balance_part() -> Any:
    """The covering authorizations' balance rows in the columns of the busy rows (kind "balance"):
    the authorization's id and service code where a busy row has its own."""
    balance = {"id": _BALANCE.c.id, "service_code": _BALANCE.c.service_code}
    return select(
        literal("balance").label("kind"),
        *(balance.get(c.key, cast(null(), c.type).label(c.key)) for c in _BUSY_COLUMNS),
        *_BALANCE_COLUMNS,
    )


_SURROUNDINGS = {
    (excluding, expired): union_all(
        *_busy_parts(excluding=excluding, expired=expired), _balance_part()
    )
    for excluding in (False, True)
    for expired in (False, True)
}


@dataclass(frozen=True)
class Coverage:
    authorization_id: uuid.UUID
    start_date: date
    end_date: date
    unit_minutes: int


@dataclass(frozen=True)
class Surroundings:
    """What a booking is checked against that bookings change, read in one statement: the busy
    time of its therapist and client, the ids of their hold occurrences that expired but are still
    active, and the client's approved authorizations for its service that touch its days (soonest
    ending first: units that expire first are spent first) with the balances of all their
    services."""

    busy: list[Busy]
    expired: list[uuid.UUID]
    coverages: list[Coverage]
    balances: dict[UnitKey, UnitBalance]


async def surroundings(
    conn: AsyncConnection,
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    lower: datetime,
    upper: datetime,
    service_code: str,
    first_day: date,
    last_day: date,
    now: datetime,
    exclude_session_id: uuid.UUID | None = None,
    expired: bool = True,
) -> Surroundings:
    """Non-cancelled sessions and active, unexpired hold occurrences of the therapist or the client
    that overlap `[lower, upper)`; with `expired`, the people's hold occurrences that expired at
    `now` but are still `active` (the booking deactivates them, `holds.deactivate_expired_holds`,
    only when there are any); the client's approved authorizations for `service_code` that touch
    `[first_day, last_day]` with the balances of all their services at `now`: one round trip.
    Bookings change all of it: under the booking locks, read it in a statement that starts after
    they were granted (docs/BOOKING.md, "Concurrency")."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "lower": lower,
        "upper": upper,
        "floor": lower - MAX_SESSION_LENGTH,
        "now": now,
        "exclude_session_id": exclude_session_id,
        "service_code": service_code,
        "first_day": first_day,
        "last_day": last_day,
    }
    statement = _SURROUNDINGS[exclude_session_id is not None, expired]
    rows = await driver_read(statement, conn.dialect).all(conn, params)
    busy: list[Busy] = []
    stale: list[uuid.UUID] = []
    authorization_rows: list[Any] = []
    for r in rows:
        if r.kind == "balance":
            authorization_rows.append(r)
        elif r.kind == "expired":
            stale.append(r.id)
        else:
            busy.append(Busy(*r[:_BUSY_FIELDS]))
    balances, _ = collect_balances(authorization_rows)
    coverages = sorted(
        (
            Coverage(r.id, r.start_date, r.end_date, r.unit_minutes)
            for r in authorization_rows
            if r.service_code == service_code
        ),
        key=lambda c: (c.end_date, c.authorization_id),
    )
    # A row of this therapist *and* client was read twice; keep one.
    return Surroundings(
        sorted(set(busy), key=lambda b: (b.start, b.end, b.kind)), stale, coverages, balances
    )


_BUSY_FIELDS = 1 + len(_BUSY_COLUMNS)
