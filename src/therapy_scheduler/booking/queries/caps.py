"""What the weekly caps and the forecast read (docs/BOOKING.md): the units a client's sessions and
holds already spend in a range of weeks, and every authorization of the client, whatever its status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import (
    Authorization,
    AuthorizationService,
    HoldOccurrence,
    Session,
)


@dataclass(frozen=True)
class Spent:
    """A session or active hold occurrence spending units of an authorized service."""

    authorization_id: uuid.UUID
    start: datetime
    end: datetime
    units: int


def _spent_query(*, excluding: bool) -> Any:
    # Untyped: each comparison gives its parameter the column's type.
    lower: Any = bindparam("lower")
    upper: Any = bindparam("upper")
    ids: Any = bindparam("ids", expanding=True)
    session_filter = [
        Session.client_id == bindparam("client_id"),
        Session.start_time >= lower,
        Session.start_time < upper,
        Session.authorization_id.in_(ids),
        Session.service_code == bindparam("service_code"),
        Session.consumes_units.is_(True),
    ]
    if excluding:
        session_filter.append(Session.id != bindparam("exclude_session_id"))
    return union_all(
        select(Session.authorization_id, Session.start_time, Session.end_time, Session.units).where(
            *session_filter
        ),
        select(
            HoldOccurrence.authorization_id,
            HoldOccurrence.start_time,
            HoldOccurrence.end_time,
            HoldOccurrence.units,
        ).where(
            HoldOccurrence.client_id == bindparam("client_id"),
            HoldOccurrence.start_time >= lower,
            HoldOccurrence.start_time < upper,
            HoldOccurrence.authorization_id.in_(ids),
            HoldOccurrence.service_code == bindparam("service_code"),
            HoldOccurrence.active.is_(True),
            HoldOccurrence.expires_at > bindparam("now"),
        ),
    )


_SPENT = {False: _spent_query(excluding=False), True: _spent_query(excluding=True)}


async def spent_between(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    service_code: str,
    authorization_ids: list[uuid.UUID],
    lower: datetime,
    upper: datetime,
    now: datetime,
    exclude_session_id: uuid.UUID | None = None,
) -> list[Spent]:
    """Unit-spending sessions and active, unexpired hold occurrences of the client for this
    service under the given authorizations that start in `[lower, upper)`."""
    rows = await conn.execute(
        _SPENT[exclude_session_id is not None],
        {
            "client_id": client_id,
            "service_code": service_code,
            "ids": authorization_ids,
            "lower": lower,
            "upper": upper,
            "now": now,
            "exclude_session_id": exclude_session_id,
        },
    )
    return [Spent(r[0], r[1], r[2], int(r[3])) for r in rows]


@dataclass(frozen=True)
class ClientAuthorization:
    """An authorization of the client for one service, whatever its status."""

    authorization_id: uuid.UUID
    start_date: date
    end_date: date
    status: str


async def client_authorizations(
    conn: AsyncConnection, *, client_id: uuid.UUID, service_code: str
) -> list[ClientAuthorization]:
    """Every authorization of the client that lists this service, latest ending last."""
    rows = await conn.execute(
        select(
            Authorization.id, Authorization.start_date, Authorization.end_date, Authorization.status
        )
        .join(AuthorizationService, AuthorizationService.authorization_id == Authorization.id)
        .where(
            Authorization.client_id == client_id,
            AuthorizationService.service_code == service_code,
        )
        .order_by(Authorization.end_date, Authorization.id)
    )
    return [ClientAuthorization(*r) for r in rows]
