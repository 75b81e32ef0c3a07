"""SQL of the admin API's authorizations and their approved services (the unit balances come from
calendar/units.py, shared with booking)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.queries.records import Page, Table, keyset_page
from therapy_scheduler.models import Authorization, AuthorizationService, Client


class AuthorizationRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    client_id: uuid.UUID
    payer: str
    number: str
    start_date: date
    end_date: date
    status: str
    created_at: datetime


AUTHORIZATIONS = Table(
    Authorization, AuthorizationRow._fields, AuthorizationRow._make, Authorization.start_date
)


async def authorization_page(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None,
    status: str | None,
    active_on: date | None,
    cursor: str | None,
    limit: int,
) -> Page[AuthorizationRow]:
    """A keyset page of the organization's authorizations, latest start first."""
    filters: list[ColumnElement[bool]] = []
    if client_id:
        filters.append(Authorization.client_id == client_id)
    if status:
        filters.append(Authorization.status == status)
    if active_on:
        filters += [Authorization.start_date <= active_on, Authorization.end_date >= active_on]
    return await keyset_page(
        conn,
        AUTHORIZATIONS.query(organization_id).where(*filters),
        kind="authorizations",
        id_column=Authorization.id,
        sort_columns=[Authorization.start_date],
        cursor=cursor,
        limit=limit,
        make=AuthorizationRow._make,
        descending=True,
    )


async def client_exists(
    conn: AsyncConnection, organization_id: uuid.UUID, client_id: uuid.UUID
) -> bool:
    client = (
        await conn.execute(
            select(Client.id).where(
                Client.id == client_id, Client.organization_id == organization_id
            )
        )
    ).first()
    return client is not None


async def insert_authorization(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    authorization_id: uuid.UUID,
    *,
    created_at: datetime,
    values: dict[str, Any],
) -> None:
    await conn.execute(
        insert(Authorization).values(
            id=authorization_id,
            organization_id=organization_id,
            created_at=created_at,
            **values,
        )
    )


async def update_authorization(
    conn: AsyncConnection, authorization_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(Authorization).where(Authorization.id == authorization_id).values(**values)
    )


async def replace_services(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    authorization_id: uuid.UUID,
    services: Sequence[dict[str, Any]],
) -> None:
    """The authorization's approved services become exactly `services` (columns of
    `authorization_services` other than the authorization and the organization)."""
    await conn.execute(
        delete(AuthorizationService).where(
            AuthorizationService.authorization_id == authorization_id
        )
    )
    if services:
        await conn.execute(
            insert(AuthorizationService),
            [
                {**s, "authorization_id": authorization_id, "organization_id": organization_id}
                for s in services
            ],
        )
