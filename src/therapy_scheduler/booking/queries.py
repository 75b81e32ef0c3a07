"""SQL of the booking side (SQLAlchemy Core). Every query is bounded by person and time range."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import (
    MAX_SESSION_LENGTH,
    Authorization,
    AuthorizationService,
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


async def person(
    conn: AsyncConnection, model: Any, organization_id: uuid.UUID, person_id: uuid.UUID
) -> Any:
    columns = [model.id, model.status, model.archived_at]
    if model is Therapist:
        columns.append(Therapist.time_zone)
    return (
        await conn.execute(
            select(*columns).where(model.id == person_id, model.organization_id == organization_id)
        )
    ).first()


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


async def active_holds_of(
    conn: AsyncConnection, user_id: uuid.UUID, now: datetime, *, but: uuid.UUID | None = None
) -> tuple[int, datetime | None]:
    """How many holds this user created that still block (active and unexpired), other than hold
    `but`, and the earliest time one of them expires."""
    query = select(func.count(), func.min(Hold.expires_at)).where(
        Hold.status == "active", Hold.expires_at > now, Hold.created_by == user_id
    )
    if but is not None:
        query = query.where(Hold.id != but)
    row = (await conn.execute(query)).one()
    return int(row[0]), row[1]


async def deactivate_expired_holds(
    conn: AsyncConnection, *, therapist_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> None:
    """Expired hold occurrences of these people stop being `active`, so that the PostgreSQL exclusion
    constraint (which counts active rows) lets the slot be taken again. Rows are locked in id order so
    that concurrent callers never wait on each other in a cycle."""
    expired = (
        select(HoldOccurrence.id)
        .where(
            HoldOccurrence.active.is_(True),
            HoldOccurrence.expires_at <= now,
            or_(HoldOccurrence.therapist_id == therapist_id, HoldOccurrence.client_id == client_id),
        )
        .order_by(HoldOccurrence.id)
        .with_for_update()
    )
    ids = list((await conn.execute(expired)).scalars())
    if ids:
        await conn.execute(
            update(HoldOccurrence).where(HoldOccurrence.id.in_(ids)).values(active=False)
        )


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
    parts = []
    for who in ("therapist_id", "client_id"):
        person_id = therapist_id if who == "therapist_id" else client_id
        session_filter = [
            getattr(Session, who) == person_id,
            Session.status != "cancelled",
            Session.start_time < upper,
            Session.end_time > lower,
            Session.start_time > lower - MAX_SESSION_LENGTH,  # index lower bound (implied)
        ]
        if exclude_session_id is not None:
            session_filter.append(Session.id != exclude_session_id)
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
                HoldOccurrence.expires_at > now,
                HoldOccurrence.start_time < upper,
                HoldOccurrence.end_time > lower,
            )
        )
    # One round trip for the four reads (sessions and holds, of the therapist and of the client).
    out = [Busy(*r) for r in await conn.execute(union_all(*parts))]
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


async def hold_by_key(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str, *, for_update: bool = False
) -> Any:
    query = select(*HOLD_COLUMNS).where(
        Hold.hold_key == hold_key, Hold.organization_id == organization_id
    )
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


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
    conn: AsyncConnection, hold_id: uuid.UUID, *, status: str, now: datetime, **values: Any
) -> None:
    await conn.execute(
        update(HoldOccurrence).where(HoldOccurrence.hold_id == hold_id).values(active=False)
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
