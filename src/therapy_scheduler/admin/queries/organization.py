"""SQL of the admin API's organization: its name, zone and settings."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.models import Organization


class OrganizationRow(NamedTuple):
    id: uuid.UUID
    name: str
    time_zone: str
    settings: dict[str, Any] | None  # as stored: `OrganizationSettings.load` reads it


async def organization(conn: AsyncConnection, organization_id: uuid.UUID) -> OrganizationRow:
    row = (
        await conn.execute(
            select(
                Organization.id, Organization.name, Organization.time_zone, Organization.settings
            ).where(Organization.id == organization_id)
        )
    ).one()
    return OrganizationRow(*row)


async def stored_settings(
    conn: AsyncConnection, organization_id: uuid.UUID
) -> dict[str, Any] | None:
    """The settings as stored (possibly partial: `OrganizationSettings.load` fills in defaults)."""
    settings: dict[str, Any] | None = (
        await conn.execute(select(Organization.settings).where(Organization.id == organization_id))
    ).scalar_one()
    return settings


async def store_settings(
    conn: AsyncConnection, organization_id: uuid.UUID, settings: dict[str, Any]
) -> None:
    await conn.execute(
        update(Organization).where(Organization.id == organization_id).values(settings=settings)
    )
