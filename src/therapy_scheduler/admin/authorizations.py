"""Insurance authorizations of the organization's clients, with their approved units per service.

Admins and schedulers read them (they see authorization data); only admins change them. Authorizations
are never deleted (sessions refer to them): a `denied` or `expired` status retires one. Lowering the
approved units below what sessions already use is allowed; the schedule then reports the overspend as
an `authorization_exhausted` conflict.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.common import AdminContext, fetch_one, invalid, keyset_page
from therapy_scheduler.admin.schemas import (
    AuthorizationCreate,
    AuthorizationListParams,
    AuthorizationPatch,
)
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.calendar.units import unit_balances
from therapy_scheduler.errors import NotFound
from therapy_scheduler.importing.schema import AuthorizedServiceIn
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.models import Authorization, AuthorizationService, Client


def _require_read(ctx: AdminContext) -> None:
    ctx.require(Capability.SEE_AUTHORIZATIONS, "Your role may not view authorizations")


def _require_write(ctx: AdminContext) -> None:
    ctx.require(Capability.MANAGE_STAFF, "Only admins manage authorizations")


def _query(ctx: AdminContext) -> Any:
    return select(*Authorization.__table__.columns).where(
        Authorization.organization_id == ctx.organization_id
    )


async def _serialize(conn: AsyncConnection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    """Authorizations with each service's approved, used, reserved and remaining units (3 queries)."""
    ids = [r.id for r in rows]
    balances = await unit_balances(conn, ids, utcnow())
    out: list[dict[str, Any]] = []
    for r in rows:
        services = sorted(
            (
                {
                    "service_code": code,
                    "approved_units": b.approved,
                    "unit_minutes": b.unit_minutes,
                    "units_used": b.consumed,
                    "units_reserved": b.reserved,
                    "units_remaining": b.remaining,
                }
                for (auth_id, code), b in balances.items()
                if auth_id == r.id
            ),
            key=lambda s: str(s["service_code"]),
        )
        out.append(
            {
                "id": str(r.id),
                "client_id": str(r.client_id),
                "payer": r.payer,
                "number": r.number,
                "start_date": r.start_date.isoformat(),
                "end_date": r.end_date.isoformat(),
                "status": r.status,
                "services": services,
                "created_at": iso_utc(r.created_at),
            }
        )
    return out


async def _one(
    conn: AsyncConnection, ctx: AdminContext, authorization_id: uuid.UUID
) -> dict[str, Any]:
    row = await _load(conn, ctx, authorization_id)
    return {"success": True, "data": (await _serialize(conn, [row]))[0]}


async def _load(conn: AsyncConnection, ctx: AdminContext, authorization_id: uuid.UUID) -> Row[Any]:
    return await fetch_one(
        conn, _query(ctx).where(Authorization.id == authorization_id), "authorization"
    )


def _check(start: date, end: date, services: list[AuthorizedServiceIn] | None) -> None:
    if start > end:
        raise invalid("end_date", "must not be before start_date")
    codes = [s.service_code for s in services or []]
    for index, code in enumerate(codes):
        if code in codes[:index]:
            raise invalid(f"services.{index}.service_code", f'service code "{code}" appears twice')


async def _replace_services(
    conn: AsyncConnection,
    ctx: AdminContext,
    authorization_id: uuid.UUID,
    services: list[AuthorizedServiceIn],
) -> None:
    await conn.execute(
        delete(AuthorizationService).where(
            AuthorizationService.authorization_id == authorization_id
        )
    )
    if services:
        await conn.execute(
            insert(AuthorizationService),
            [
                {
                    **s.model_dump(),
                    "authorization_id": authorization_id,
                    "organization_id": ctx.organization_id,
                }
                for s in services
            ],
        )


async def get_authorization(*, ctx: AdminContext, authorization_id: uuid.UUID) -> dict[str, Any]:
    _require_read(ctx)
    async with ctx.db.read() as conn:
        return await _one(conn, ctx, authorization_id)


async def list_authorizations(
    *, ctx: AdminContext, params: AuthorizationListParams
) -> dict[str, Any]:
    """Authorizations, latest start first, with their unit balances."""
    _require_read(ctx)
    filters: list[ColumnElement[bool]] = []
    if params.client_id:
        filters.append(Authorization.client_id == params.client_id)
    if params.status:
        filters.append(Authorization.status == params.status)
    if params.active_on:
        filters += [
            Authorization.start_date <= params.active_on,
            Authorization.end_date >= params.active_on,
        ]
    async with ctx.db.read() as conn:
        page = await keyset_page(
            conn,
            _query(ctx).where(*filters),
            kind="authorizations",
            id_column=Authorization.id,
            sort_columns=[Authorization.start_date],
            cursor=params.cursor,
            limit=params.limit,
            descending=True,
        )
        items = await _serialize(conn, page.rows)
    return page.envelope(items, params.limit)


async def create_authorization(*, ctx: AdminContext, body: AuthorizationCreate) -> dict[str, Any]:
    """A new authorization for a client of the organization (404 for any other client id)."""
    _require_write(ctx)
    _check(body.start_date, body.end_date, body.services)
    authorization_id = uuid.uuid4()
    async with ctx.write() as conn:
        client = (
            await conn.execute(
                select(Client.id).where(
                    Client.id == body.client_id, Client.organization_id == ctx.organization_id
                )
            )
        ).first()
        if client is None:
            raise NotFound("Client not found", details={"field": "client_id"})
        await conn.execute(
            insert(Authorization).values(
                id=authorization_id,
                organization_id=ctx.organization_id,
                created_at=utcnow(),
                **body.model_dump(exclude={"services"}),
            )
        )
        await _replace_services(conn, ctx, authorization_id, body.services)
        await ctx.audit(
            conn,
            "authorization.create",
            "authorization",
            authorization_id,
            {"client_id": str(body.client_id), "services": [s.service_code for s in body.services]},
        )
        return await _one(conn, ctx, authorization_id)


async def update_authorization(
    *, ctx: AdminContext, authorization_id: uuid.UUID, patch: AuthorizationPatch
) -> dict[str, Any]:
    """Change the given fields; `services` replaces the whole list of approved services."""
    _require_write(ctx)
    changes = patch.changes()
    async with ctx.write() as conn:
        current = await _load(conn, ctx, authorization_id)
        _check(
            changes.get("start_date", current.start_date),
            changes.get("end_date", current.end_date),
            patch.services,
        )
        columns = {k: v for k, v in changes.items() if k != "services"}
        if columns:
            await conn.execute(
                update(Authorization).where(Authorization.id == authorization_id).values(**columns)
            )
        if patch.services is not None:
            await _replace_services(conn, ctx, authorization_id, patch.services)
        await ctx.audit(
            conn,
            "authorization.update",
            "authorization",
            authorization_id,
            {"fields": sorted(changes)},
        )
        return await _one(conn, ctx, authorization_id)
