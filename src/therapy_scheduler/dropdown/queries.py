"""SQL of the dropdown data (SQLAlchemy Core): the people and places a caller may pick, by name."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import client_scope, therapist_scope
from therapy_scheduler.models import Client, Location, Therapist


class TherapistOption(NamedTuple):
    id: uuid.UUID
    full_name: str
    credential: str
    status: str
    # read only when contact data is asked for
    email: str | None = None
    phone: str | None = None


class ClientOption(NamedTuple):
    id: uuid.UUID
    full_name: str
    status: str
    # read only when contact data is asked for
    email: str | None = None
    phone: str | None = None


class LocationOption(NamedTuple):
    id: uuid.UUID
    name: str
    location_type: str
    is_active: bool


async def therapists(
    conn: AsyncConnection, principal: Principal, *, include_inactive: bool, include_contact: bool
) -> list[TherapistOption]:
    """The therapists the caller may see; only active, unarchived ones unless `include_inactive`."""
    cols = [Therapist.id, Therapist.full_name, Therapist.credential, Therapist.status]
    if include_contact:
        cols += [Therapist.email, Therapist.phone]
    query = select(*cols).where(therapist_scope(principal))
    if not include_inactive:
        query = query.where(Therapist.status == "active", Therapist.archived_at.is_(None))
    rows: Iterable[tuple[Any, ...]] = await conn.execute(
        query.order_by(Therapist.full_name, Therapist.id)
    )
    return [TherapistOption(*row) for row in rows]  # without contact data: email, phone None


async def clients(
    conn: AsyncConnection, principal: Principal, *, include_inactive: bool, include_contact: bool
) -> list[ClientOption]:
    """The clients the caller may see; only active, unarchived ones unless `include_inactive`."""
    cols = [Client.id, Client.full_name, Client.status]
    if include_contact:
        cols += [Client.email, Client.phone]
    query = select(*cols).where(client_scope(principal))
    if not include_inactive:
        query = query.where(Client.status == "active", Client.archived_at.is_(None))
    rows: Iterable[tuple[Any, ...]] = await conn.execute(
        query.order_by(Client.full_name, Client.id)
    )
    return [ClientOption(*row) for row in rows]  # without contact data: email, phone None


async def locations(
    conn: AsyncConnection, organization_id: uuid.UUID, *, include_inactive: bool
) -> list[LocationOption]:
    """The organization's locations; only active ones unless `include_inactive`."""
    places = select(Location.id, Location.name, Location.location_type, Location.is_active).where(
        Location.organization_id == organization_id
    )
    if not include_inactive:
        places = places.where(Location.is_active.is_(True))
    rows = await conn.execute(places.order_by(Location.name, Location.id))
    return [LocationOption(*row) for row in rows]
