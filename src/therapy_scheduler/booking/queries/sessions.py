"""Sessions being changed: one session for update, the members of its series."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import (
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
