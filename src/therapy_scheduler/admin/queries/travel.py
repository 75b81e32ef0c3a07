"""SQL of the admin API's travel-time matrix (table `location_travel`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import Location, LocationTravel


async def travel_entries(conn: AsyncConnection, organization_id: uuid.UUID) -> list[Any]:
    """Every entry of the organization, by pair."""
    rows = await conn.execute(
        select(
            LocationTravel.from_location_id, LocationTravel.to_location_id, LocationTravel.minutes
        )
        .where(LocationTravel.organization_id == organization_id)
        .order_by(LocationTravel.from_location_id, LocationTravel.to_location_id)
    )
    return list(rows)


async def known_locations(
    conn: AsyncConnection, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these ids are locations of the organization."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    rows = await conn.execute(
        select(Location.id).where(
            Location.organization_id == organization_id, Location.id.in_(wanted)
        )
    )
    return set(rows.scalars())


async def replace_travel_entries(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    entries: list[tuple[uuid.UUID, uuid.UUID, int]],
) -> None:
    """The organization's matrix becomes exactly `entries` (pairs in ascending id order)."""
    await conn.execute(
        delete(LocationTravel).where(LocationTravel.organization_id == organization_id)
    )
    if entries:
        await conn.execute(
            insert(LocationTravel),
            [
                {
                    "organization_id": organization_id,
                    "from_location_id": a,
                    "to_location_id": b,
                    "minutes": minutes,
                }
                for a, b, minutes in entries
            ],
        )
