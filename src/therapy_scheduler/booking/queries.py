"""SQL of the booking side (SQLAlchemy Core). Every query is bounded by person and time range."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, get_args

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import ScopeKind, client_scope_for, scope_kind, scope_params
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


def _people_query(kind: ScopeKind, *, with_holds: bool) -> Any:
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
    if not with_holds:
        return query
    mine = _ACTIVE_HOLDS.with_only_columns(
        func.count().label("active_holds"), func.min(Hold.expires_at).label("next_expiry")
    ).subquery("mine")
    return query.add_columns(mine.c.active_holds, mine.c.next_expiry).join(mine, true())


async def people(
    conn: AsyncConnection,
    principal: Principal,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    holds_at: datetime | None = None,
) -> Any:
    """The therapist of the caller's organization (None if there is none) with, in the same row, the
    client if the caller may see them (else the client columns are NULL); with `holds_at`, also the
    caller's holds that still block at that instant (`active_holds`, `next_expiry`, as
    `active_holds_of`). One round trip."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "organization_id": principal.organization_id,
        **scope_params(principal),
    }
    if holds_at is not None:
        params.update(now=holds_at, user_id=principal.user_id)
    query = _PEOPLE[scope_kind(principal), holds_at is not None]
    return (await conn.execute(query, params)).first()


async def location(
    conn: AsyncConnection, organization_id: uuid.UUID, location_id: uuid.UUID
) -> Any:
    return (
        await conn.execute(
            select(Location.id, Location.location_type, Location.is_active).where(
                Location.id == location_id, Location.organization_id == organization_id
            )
        )
    ).first()


# The statements of every hold are built once (SQLAlchemy reuses their cache key and compiled form).
_ACTIVE_HOLDS = select(func.count(), func.min(Hold.expires_at)).where(
    Hold.status == "active",
    Hold.expires_at > bindparam("now"),
    Hold.created_by == bindparam("user_id"),
)
_ACTIVE_HOLDS_BUT = _ACTIVE_HOLDS.where(Hold.id != bindparam("but"))
_PEOPLE = {
    (kind, with_holds): _people_query(kind, with_holds=with_holds)
    for kind in get_args(ScopeKind)
    for with_holds in (False, True)
}


async def active_holds_of(
    conn: AsyncConnection, user_id: uuid.UUID, now: datetime, *, but: uuid.UUID | None = None
) -> tuple[int, datetime | None]:
    """How many holds this user created that still block (active and unexpired), other than hold
    `but`, and the earliest time one of them expires."""
    params = {"now": now, "user_id": user_id}
    if but is None:
        row = (await conn.execute(_ACTIVE_HOLDS, params)).one()
    else:
        row = (await conn.execute(_ACTIVE_HOLDS_BUT, {**params, "but": but})).one()
    return int(row[0]), row[1]


_EXPIRED = (
    select(HoldOccurrence.id)
    .where(
        HoldOccurrence.active.is_(True),
        HoldOccurrence.expires_at <= bindparam("now"),
        or_(
            HoldOccurrence.therapist_id == bindparam("therapist_id"),
            HoldOccurrence.client_id == bindparam("client_id"),
        ),
    )
    .order_by(HoldOccurrence.id)
    .with_for_update()
)


async def deactivate_expired_holds(
    conn: AsyncConnection, *, therapist_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> None:
    """Expired hold occurrences of these people stop being `active`, so that the PostgreSQL exclusion
    constraint (which counts active rows) lets the slot be taken again. Rows are locked in id order so
    that concurrent callers never wait on each other in a cycle."""
    params = {"now": now, "therapist_id": therapist_id, "client_id": client_id}
    ids = list((await conn.execute(_EXPIRED, params)).scalars())
    if ids:
        await conn.execute(
            update(HoldOccurrence).where(HoldOccurrence.id.in_(ids)).values(active=False)
        )


def _busy_query(*, excluding: bool) -> Any:
    """Sessions and holds of the therapist and of the client in `[lower, upper)`, as one UNION ALL
    (one round trip for the four reads)."""
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
            ).where(*session_filter)
        )
        parts.append(
            select(
                literal("hold").label("kind"),
                HoldOccurrence.therapist_id,
                HoldOccurrence.client_id,
                HoldOccurrence.start_time,
                HoldOccurrence.end_time,
                Hold.location_id,
                Hold.location_type,
            )
            .join(Hold, Hold.id == HoldOccurrence.hold_id)
            .where(
                getattr(HoldOccurrence, who) == person_id,
                HoldOccurrence.active.is_(True),
                HoldOccurrence.expires_at > bindparam("now"),
                HoldOccurrence.start_time < upper,
                HoldOccurrence.end_time > lower,
            )
        )
    return union_all(*parts)


_BUSY = {False: _busy_query(excluding=False), True: _busy_query(excluding=True)}


async def busy_between(
    conn: AsyncConnection,
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    lower: datetime,
    upper: datetime,
    now: datetime,
    exclude_session_id: uuid.UUID | None = None,
) -> list[Busy]:
    """Non-cancelled sessions and active, unexpired hold occurrences of the therapist or the client
    that overlap `[lower, upper)`."""
    params = {
        "therapist_id": therapist_id,
        "client_id": client_id,
        "lower": lower,
        "upper": upper,
        "floor": lower - MAX_SESSION_LENGTH,
        "now": now,
        "exclude_session_id": exclude_session_id,
    }
    rows = await conn.execute(_BUSY[exclude_session_id is not None], params)
    out = [Busy(*r) for r in rows]
    # A row of this therapist *and* client was read twice; keep one.
    return sorted(set(out), key=lambda b: (b.start, b.end, b.kind))


@dataclass(frozen=True)
class Coverage:
    authorization_id: uuid.UUID
    start_date: date
    end_date: date
    unit_minutes: int


async def approved_authorizations(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    service_code: str,
    first_day: date,
    last_day: date,
) -> list[Coverage]:
    """Approved authorizations of the client for this service that touch the day range, soonest
    ending first (units that expire first are spent first)."""
    rows = await conn.execute(
        select(
            Authorization.id,
            Authorization.start_date,
            Authorization.end_date,
            AuthorizationService.unit_minutes,
        )
        .join(AuthorizationService, AuthorizationService.authorization_id == Authorization.id)
        .where(
            Authorization.client_id == client_id,
            Authorization.status == "approved",
            Authorization.start_date <= last_day,
            Authorization.end_date >= first_day,
            AuthorizationService.service_code == service_code,
        )
        .order_by(Authorization.end_date, Authorization.id)
    )
    return [Coverage(r.id, r.start_date, r.end_date, r.unit_minutes) for r in rows]


HOLD_COLUMNS = (
    Hold.id,
    Hold.organization_id,
    Hold.hold_key,
    Hold.therapist_id,
    Hold.client_id,
    Hold.created_by,
    Hold.status,
    Hold.expires_at,
    Hold.time_zone,
    Hold.service_code,
    Hold.location_id,
    Hold.location_type,
    Hold.reschedule_session_id,
    Hold.recurrence,
    Hold.hold_metadata.label("hold_metadata"),
    Hold.series_id,
    Hold.confirmed_by,
    Hold.created_at,
    Hold.closed_at,
)


_HOLD_BY_KEY = select(*HOLD_COLUMNS).where(
    Hold.hold_key == bindparam("hold_key"), Hold.organization_id == bindparam("organization_id")
)
_HOLD_BY_KEY_LOCKED = _HOLD_BY_KEY.with_for_update()


async def hold_by_key(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str, *, for_update: bool = False
) -> Any:
    query = _HOLD_BY_KEY_LOCKED if for_update else _HOLD_BY_KEY
    params = {"hold_key": hold_key, "organization_id": organization_id}
    return (await conn.execute(query, params)).first()


@dataclass(frozen=True)
class Held:
    """One occurrence of a hold, as `hold_occurrences` and `hold_to_confirm` read it."""

    id: uuid.UUID
    occurrence_index: int
    start_time: datetime
    end_time: datetime
    active: bool
    service_code: str
    authorization_id: uuid.UUID | None
    units: int
    session_id: uuid.UUID | None


_T = aliased(Therapist, name="t")
_C = aliased(Client, name="c")
_HELD_COLUMNS = tuple(
    getattr(HoldOccurrence, name).label(f"held_{name}") for name in Held.__dataclass_fields__
)
# Built once (SQLAlchemy reuses its cache key and compiled form).
_HOLD_TO_CONFIRM = (
    select(
        *HOLD_COLUMNS,
        _T.full_name.label("therapist_name"),
        _C.full_name.label("client_name"),
        *_HELD_COLUMNS,
    )
    .join(HoldOccurrence, HoldOccurrence.hold_id == Hold.id)
    .join(_T, _T.id == Hold.therapist_id)
    .join(_C, _C.id == Hold.client_id)
    .where(
        Hold.hold_key == bindparam("hold_key"),
        Hold.organization_id == bindparam("organization_id"),
    )
    .order_by(HoldOccurrence.occurrence_index)
    .with_for_update(of=Hold)
)


async def hold_to_confirm(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str
) -> tuple[Any, list[Held]]:
    """A hold under its row lock, with its occurrences and its therapist's and client's names, in
    one statement: (None, []) when there is no such hold."""
    rows = (
        await conn.execute(
            _HOLD_TO_CONFIRM, {"hold_key": hold_key, "organization_id": organization_id}
        )
    ).all()
    if not rows:
        return None, []
    held = [Held(*(getattr(r, f"held_{name}") for name in Held.__dataclass_fields__)) for r in rows]
    return rows[0], held


async def hold_occurrences(conn: AsyncConnection, hold_id: uuid.UUID) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(
                    HoldOccurrence.id,
                    HoldOccurrence.occurrence_index,
                    HoldOccurrence.start_time,
                    HoldOccurrence.end_time,
                    HoldOccurrence.active,
                    HoldOccurrence.service_code,
                    HoldOccurrence.authorization_id,
                    HoldOccurrence.units,
                    HoldOccurrence.session_id,
                )
                .where(HoldOccurrence.hold_id == hold_id)
                .order_by(HoldOccurrence.occurrence_index)
            )
        ).all()
    )


async def close_hold(
    conn: AsyncConnection,
    hold_id: uuid.UUID,
    *,
    status: str,
    now: datetime,
    session_ids: dict[uuid.UUID, uuid.UUID] | None = None,
    **values: Any,
) -> None:
    """The hold's occurrences stop blocking (and, on a confirm, point at the sessions they became:
    `session_ids`, occurrence id → session id, in the same statement); the hold gets its status."""
    occurrences: dict[str, Any] = {"active": False}
    if session_ids:
        occurrences["session_id"] = case(
            *(
                (HoldOccurrence.id == held, literal(session, HoldOccurrence.session_id.type))
                for held, session in session_ids.items()
            )
        )
    await conn.execute(
        update(HoldOccurrence).where(HoldOccurrence.hold_id == hold_id).values(**occurrences)
    )
    await conn.execute(
        update(Hold).where(Hold.id == hold_id).values(status=status, closed_at=now, **values)
    )


SESSION_COLUMNS = (
    Session.id,
    Session.organization_id,
    Session.therapist_id,
    Session.client_id,
    Session.start_time,
    Session.end_time,
    Session.status,
    Session.series_id,
    Session.units,
    Session.consumes_units,
    Session.authorization_id,
    Session.location_id,
    Session.location_type,
    Session.service_code,
)


async def session_for_change(
    conn: AsyncConnection, session_id: uuid.UUID, where: Any, *, for_update: bool = False
) -> Any:
    query = select(*SESSION_COLUMNS).where(Session.id == session_id, where)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def series_members(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    series_id: uuid.UUID,
    from_start: datetime | None,
) -> list[Any]:
    """Sessions of a series (from `from_start` on, when given), locked in id order."""
    conditions = [Session.organization_id == organization_id, Session.series_id == series_id]
    if from_start is not None:
        conditions.append(Session.start_time >= from_start)
    return list(
        (
            await conn.execute(
                select(*SESSION_COLUMNS)
                .where(and_(*conditions))
                .order_by(Session.id)
                .with_for_update()
            )
        ).all()
    )
