"""Sessions being changed: one session for update, the members of its series, new sessions, their
status and place, their cancellation records, and the sessions' JSON columns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import (
    Row,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.session_json import session_rows
from therapy_scheduler.infra import last_statement
from therapy_scheduler.models import (
    Cancellation,
    Session,
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
    Session.supervises,
)

# A session as `SESSION_COLUMNS` reads it.
SessionRow = Row[*tuple[Any, ...]]


async def session_for_change(
    conn: AsyncConnection, session_id: uuid.UUID, where: Any, *, for_update: bool = False
) -> SessionRow | None:
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
) -> list[SessionRow]:
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


async def session_to_move(
    conn: AsyncConnection, *, organization_id: uuid.UUID, session_id: uuid.UUID
) -> SessionRow | None:
    """The session a reschedule hold moves, under its row lock (any session of the organization)."""
    return await session_for_change(
        conn, session_id, Session.organization_id == organization_id, for_update=True
    )


class NewSession(TypedDict):
    """The values of one session `insert_sessions` writes (every column of `sessions`)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    location_id: uuid.UUID | None
    location_type: str | None
    service_code: str
    start_time: datetime
    end_time: datetime
    status: str
    authorization_id: uuid.UUID | None
    units: int
    consumes_units: bool
    series_id: uuid.UUID | None
    supervises: str | None
    notes: str | None
    created_by: uuid.UUID
    updated_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


async def insert_sessions(conn: AsyncConnection, *, rows: list[NewSession]) -> None:
    """New sessions, for a transaction that reads none of them back: with its last statement on
    PostgreSQL when they are few, else now in one statement (`last_statement.insert_rows_later`);
    an overlap the exclusion constraints refuse fails the statement that carries them, and the
    transaction, either way."""
    await last_statement.insert_rows_later(conn, Session, [dict(row) for row in rows])


async def move_session(
    conn: AsyncConnection,
    *,
    session_id: uuid.UUID,
    start_time: datetime,
    end_time: datetime,
    service_code: str,
    authorization_id: uuid.UUID | None,
    units: int,
    location_id: uuid.UUID | None,
    location_type: str | None,
    notes: str | None,
    updated_by: uuid.UUID,
    updated_at: datetime,
    supervises: str | None = None,
) -> None:
    """A session gets a new time, service, units and place (and notes, unless `notes` is None), and
    whether it supervises at its new time (docs/BOOKING.md "Supervision overlap")."""
    values: dict[str, Any] = {
        "supervises": supervises,
        "start_time": start_time,
        "end_time": end_time,
        "service_code": service_code,
        "authorization_id": authorization_id,
        "units": units,
        "location_id": location_id,
        "location_type": location_type,
        "updated_by": updated_by,
        "updated_at": updated_at,
    }
    if notes is not None:
        values["notes"] = notes
    await conn.execute(update(Session).where(Session.id == session_id).values(**values))


async def set_session_status(
    conn: AsyncConnection,
    *,
    session_id: uuid.UUID,
    status: str,
    consumes_units: bool,
    updated_by: uuid.UUID,
    updated_at: datetime,
    replanned: tuple[uuid.UUID | None, int] | None = None,
    supervises: tuple[str | None] | None = None,
) -> None:
    """A session's new status and whether it consumes units; `replanned`: (authorization, units);
    `supervises`: (the code it now supervises or None,), when booked again (reactivation)."""
    values: dict[str, Any] = {}
    if replanned is not None:
        values = {"authorization_id": replanned[0], "units": replanned[1]}
    if supervises is not None:
        values["supervises"] = supervises[0]
    await conn.execute(
        update(Session)
        .where(Session.id == session_id)
        .values(
            status=status,
            consumes_units=consumes_units,
            updated_by=updated_by,
            updated_at=updated_at,
            **values,
        )
    )


async def insert_cancellation(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    session_id: uuid.UUID,
    cancelled_by: uuid.UUID,
    cancelled_at: datetime,
    reason: str | None,
    notes: str | None,
    policy: str,
    late_cancellation: bool,
    units_released: int,
) -> None:
    """The record of one cancellation: who, when, why, under which policy, the units released."""
    await conn.execute(
        insert(Cancellation).values(
            id=uuid.uuid4(),
            organization_id=organization_id,
            session_id=session_id,
            cancelled_by=cancelled_by,
            cancelled_at=cancelled_at,
            reason=reason,
            notes=notes,
            policy=policy,
            late_cancellation=late_cancellation,
            units_released=units_released,
        )
    )


async def last_cancellation(
    conn: AsyncConnection, *, session_id: uuid.UUID
) -> Row[bool, str] | None:
    """(late_cancellation, policy) of a session's latest cancellation record, None without one."""
    return (
        await conn.execute(
            select(Cancellation.late_cancellation, Cancellation.policy)
            .where(Cancellation.session_id == session_id)
            .order_by(Cancellation.cancelled_at.desc())
            .limit(1)
        )
    ).first()


async def session_views(conn: AsyncConnection, *, session_ids: list[uuid.UUID]) -> list[Row[Any]]:
    """Sessions with the columns of their detailed JSON (`calendar.session_json`, whose field table
    decides the columns: hence `Row[Any]`), in start order."""
    return list(
        (
            await conn.execute(
                session_rows(detailed=True)
                .where(Session.id.in_(session_ids))
                .order_by(Session.start_time, Session.id)
            )
        ).all()
    )
