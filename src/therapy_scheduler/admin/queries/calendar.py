"""SQL of the admin API's therapist calendars: weekly availability windows and dated time off."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time
from typing import Any, NamedTuple

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.queries.records import Page, keyset_page
from therapy_scheduler.models import AvailabilityWindow, Therapist, TimeOff


class CalendarOwner(NamedTuple):
    id: uuid.UUID
    time_zone: str


async def therapist(
    conn: AsyncConnection, organization_id: uuid.UUID, therapist_id: uuid.UUID
) -> CalendarOwner | None:
    """The therapist (with their zone) if they belong to the organization."""
    row = (
        await conn.execute(
            select(Therapist.id, Therapist.time_zone).where(
                Therapist.id == therapist_id, Therapist.organization_id == organization_id
            )
        )
    ).first()
    return None if row is None else CalendarOwner(*row)


# --- weekly windows -----------------------------------------------------------------------------


class Window(NamedTuple):
    weekday: int  # 0 = Monday
    start_local: time
    end_local: time


async def windows(conn: AsyncConnection, therapist_id: uuid.UUID) -> list[Window]:
    """The therapist's weekly windows, by weekday and start."""
    rows = await conn.execute(
        select(
            AvailabilityWindow.weekday, AvailabilityWindow.start_local, AvailabilityWindow.end_local
        )
        .where(AvailabilityWindow.therapist_id == therapist_id)
        .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_local)
    )
    return [Window(*r) for r in rows]


async def replace_windows(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    new: Sequence[Window],
) -> None:
    """Every weekly window of the therapist becomes one of `new`."""
    await conn.execute(
        delete(AvailabilityWindow).where(AvailabilityWindow.therapist_id == therapist_id)
    )
    if new:
        await conn.execute(
            insert(AvailabilityWindow),
            [
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization_id,
                    "therapist_id": therapist_id,
                    "weekday": w.weekday,
                    "start_local": w.start_local,
                    "end_local": w.end_local,
                }
                for w in new
            ],
        )


# --- time off and extra hours -------------------------------------------------------------------


class TimeOffRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    therapist_id: uuid.UUID
    kind: str  # "time_off" | "extra"
    start_time: datetime
    end_time: datetime


def _time_off_query(organization_id: uuid.UUID, therapist_id: uuid.UUID) -> Select[Any]:
    columns = TimeOff.__table__.columns
    return select(*(columns[f] for f in TimeOffRow._fields)).where(
        TimeOff.therapist_id == therapist_id, TimeOff.organization_id == organization_id
    )


async def time_off_page(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    *,
    ends_after: datetime | None,
    starts_before: datetime | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> Page[TimeOffRow]:
    """A keyset page of the therapist's entries by start time; the bounds are instants."""
    query = _time_off_query(organization_id, therapist_id)
    if ends_after is not None:
        query = query.where(TimeOff.end_time > ends_after)
    if starts_before is not None:
        query = query.where(TimeOff.start_time < starts_before)
    if kind:
        query = query.where(TimeOff.kind == kind)
    return await keyset_page(
        conn,
        query,
        kind="time_off",
        id_column=TimeOff.id,
        sort_columns=[TimeOff.start_time],
        cursor=cursor,
        limit=limit,
        make=TimeOffRow._make,
    )


async def time_off(
    conn: AsyncConnection, organization_id: uuid.UUID, therapist_id: uuid.UUID, entry_id: uuid.UUID
) -> TimeOffRow | None:
    """The entry if it is one of this therapist's in the organization."""
    row = (
        await conn.execute(
            _time_off_query(organization_id, therapist_id).where(TimeOff.id == entry_id)
        )
    ).first()
    return None if row is None else TimeOffRow._make(row)


async def insert_time_off(
    conn: AsyncConnection,
    *,
    entry_id: uuid.UUID,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    kind: str,
    start_time: datetime,
    end_time: datetime,
) -> None:
    await conn.execute(
        insert(TimeOff).values(
            id=entry_id,
            organization_id=organization_id,
            therapist_id=therapist_id,
            kind=kind,
            start_time=start_time,
            end_time=end_time,
        )
    )


async def update_time_off(
    conn: AsyncConnection, entry_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(update(TimeOff).where(TimeOff.id == entry_id).values(**values))


async def delete_time_off(conn: AsyncConnection, entry_id: uuid.UUID) -> None:
    await conn.execute(delete(TimeOff).where(TimeOff.id == entry_id))
