"""Authorization units: approved minus what sessions consume and what active holds reserve."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import Authorization, AuthorizationService, HoldOccurrence, Session
from therapy_scheduler.reference.vocab import SERVICE_CODES

UnitKey = tuple[uuid.UUID, str]  # (authorization_id, service_code)


@dataclass(frozen=True)
class UnitBalance:
    approved: int
    unit_minutes: int
    consumed: int
    reserved: int

    @property
    def remaining(self) -> int:
        return self.approved - self.consumed - self.reserved


def session_units(minutes: float, unit_minutes: int) -> int:
    """A session's units: its duration divided by the service's unit length, rounded up."""
    return math.ceil(minutes / unit_minutes)


def default_unit_minutes(service_code: str) -> int:
    service = SERVICE_CODES.get(service_code)
    return service.unit_minutes if service else 15


async def unit_balances(
    conn: AsyncConnection, authorization_ids: Iterable[uuid.UUID], now: datetime
) -> dict[UnitKey, UnitBalance]:
    """Balances of every service of the given authorizations, in two queries whatever their number."""
    ids = list(set(authorization_ids))
    if not ids:
        return {}
    approved = {
        (r.authorization_id, r.service_code): (r.approved_units, r.unit_minutes)
        for r in await conn.execute(
            select(
                AuthorizationService.authorization_id,
                AuthorizationService.service_code,
                AuthorizationService.approved_units,
                AuthorizationService.unit_minutes,
            ).where(AuthorizationService.authorization_id.in_(ids))
        )
    }
    spent = union_all(
        select(
            Session.authorization_id.label("authorization_id"),
            Session.service_code.label("service_code"),
            func.sum(Session.units).label("consumed"),
            literal(0).label("reserved"),
        )
        .where(Session.authorization_id.in_(ids), Session.consumes_units.is_(True))
        .group_by(Session.authorization_id, Session.service_code),
        select(
            HoldOccurrence.authorization_id,
            HoldOccurrence.service_code,
            literal(0),
            func.sum(HoldOccurrence.units),
        )
        .where(
            HoldOccurrence.authorization_id.in_(ids),
            HoldOccurrence.active.is_(True),
            HoldOccurrence.expires_at > now,
        )
        .group_by(HoldOccurrence.authorization_id, HoldOccurrence.service_code),
    )
    consumed: dict[UnitKey, list[int]] = {}
    for r in await conn.execute(select(spent.subquery())):
        entry = consumed.setdefault((r.authorization_id, r.service_code), [0, 0])
        entry[0] += int(r.consumed or 0)
        entry[1] += int(r.reserved or 0)
    return {
        key: UnitBalance(units, minutes, *consumed.get(key, [0, 0]))
        for key, (units, minutes) in approved.items()
    }


async def authorization_end_dates(
    conn: AsyncConnection, authorization_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[date, date, str]]:
    ids = list(set(authorization_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            Authorization.id, Authorization.start_date, Authorization.end_date, Authorization.status
        ).where(Authorization.id.in_(ids))
    )
    return {r.id: (r.start_date, r.end_date, r.status) for r in rows}
