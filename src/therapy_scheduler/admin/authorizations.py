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

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.common import AdminContext, found, invalid, page_envelope
from therapy_scheduler.admin.queries import authorizations as queries
from therapy_scheduler.admin.queries import records
from therapy_scheduler.admin.queries.authorizations import AUTHORIZATIONS, AuthorizationRow
from therapy_scheduler.admin.schemas import (
    AuthorizationCreate,
    AuthorizationListParams,
    AuthorizationPatch,
)
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.calendar.units import unit_balances
from therapy_scheduler.errors import NotFound
from therapy_scheduler.importing.schema import AuthorizedServiceIn
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc, utcnow


def _require_read(ctx: AdminContext) -> None:
    ctx.require(Capability.SEE_AUTHORIZATIONS, "Your role may not view authorizations")


def _require_write(ctx: AdminContext) -> None:
    ctx.require(Capability.MANAGE_STAFF, "Only admins manage authorizations")


async def _serialize(conn: AsyncConnection, rows: list[AuthorizationRow]) -> list[dict[str, Any]]:
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
                    "weekly_cap_units": b.weekly_cap_units,
                    "weekly_cap_hours": (
                        b.weekly_cap_minutes / 60 if b.weekly_cap_minutes is not None else None
                    ),
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
    return ok(data=(await _serialize(conn, [row]))[0])


async def _load(
    conn: AsyncConnection, ctx: AdminContext, authorization_id: uuid.UUID
) -> AuthorizationRow:
    row = await records.load(conn, AUTHORIZATIONS, ctx.organization_id, authorization_id)
    return found(row, "authorization")


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
    await queries.replace_services(
        conn, ctx.organization_id, authorization_id, [s.columns() for s in services]
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
    async with ctx.db.read() as conn:
        page = await queries.authorization_page(
            conn,
            ctx.organization_id,
            client_id=params.client_id,
            status=params.status,
            active_on=params.active_on,
            cursor=params.cursor,
            limit=params.limit,
        )
        items = await _serialize(conn, page.rows)
    return page_envelope(page, items, params.limit)


async def create_authorization(*, ctx: AdminContext, body: AuthorizationCreate) -> dict[str, Any]:
    """A new authorization for a client of the organization (404 for any other client id)."""
    _require_write(ctx)
    _check(body.start_date, body.end_date, body.services)
    authorization_id = uuid.uuid4()
    async with ctx.write() as conn:
        if not await queries.client_exists(conn, ctx.organization_id, body.client_id):
            raise NotFound("Client not found", details={"field": "client_id"})
        await queries.insert_authorization(
            conn,
            ctx.organization_id,
            authorization_id,
            created_at=utcnow(),
            values=body.model_dump(exclude={"services"}),
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
            await queries.update_authorization(conn, authorization_id, columns)
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
