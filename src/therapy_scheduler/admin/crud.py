"""The create / read / list / update / archive cycle shared by therapists, clients, locations and users.

Every query is limited to the caller's organization, so another organization's id is answered exactly
like an id that does not exist (404). People are never deleted: archiving sets `archived_at` (therapists,
clients) or clears `is_active` (locations, users), and can be undone.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.common import AdminContext, PageParams, found, page_envelope
from therapy_scheduler.admin.queries import records
from therapy_scheduler.admin.queries.records import Table
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.kit.time import iso_utc, utcnow

R = TypeVar("R")
Check = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Resource(Generic[R]):
    kind: str  # singular, as in audit actions ("therapist.update") and messages
    table: Table[R]
    read: Capability
    write: Capability
    serialize: Callable[[R, bool], dict[str, Any]]
    archive_column: str  # "archived_at" (timestamp) or "is_active" (flag)

    @property
    def plural(self) -> str:
        return self.kind + "s"

    def require_read(self, ctx: AdminContext) -> None:
        ctx.require(self.read, f"Your role may not view {self.plural}")

    def require_write(self, ctx: AdminContext) -> None:
        ctx.require(self.write, f"Your role may not manage {self.plural}")

    def archived(self, row: R) -> bool:
        value = getattr(row, self.archive_column)
        if self.archive_column == "archived_at":
            return value is not None
        return not value

    def archive_values(self, archive: bool) -> dict[str, Any]:
        if self.archive_column == "archived_at":
            return {"archived_at": utcnow() if archive else None}
        return {"is_active": not archive}


async def load(
    conn: AsyncConnection, ctx: AdminContext, res: Resource[R], record_id: uuid.UUID
) -> R:
    """The record of the caller's organization, else 404."""
    row = await records.load(conn, res.table, ctx.organization_id, record_id)
    return found(row, res.kind)


async def get_record(ctx: AdminContext, res: Resource[R], record_id: uuid.UUID) -> dict[str, Any]:
    """One record of the caller's organization (404 for any other id)."""
    res.require_read(ctx)
    async with ctx.db.read() as conn:
        row = await load(conn, ctx, res, record_id)
    return res.serialize(row, ctx.sees_contact_data)


async def list_records(
    ctx: AdminContext, res: Resource[R], params: PageParams, filters: list[ColumnElement[bool]]
) -> dict[str, Any]:
    """A keyset page of the organization's records, sorted by name then id."""
    res.require_read(ctx)
    async with ctx.db.read() as conn:
        page = await records.page(
            conn,
            res.table,
            ctx.organization_id,
            filters,
            kind=res.plural,
            cursor=params.cursor,
            limit=params.limit,
        )
    contact = ctx.sees_contact_data
    return page_envelope(page, [res.serialize(r, contact) for r in page.rows], params.limit)


async def create_record(
    ctx: AdminContext,
    res: Resource[R],
    values: dict[str, Any],
    *,
    check: Check | None = None,
    after: Callable[[AsyncConnection, uuid.UUID], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Insert a record of the caller's organization, audit it, and return it."""
    res.require_write(ctx)
    record_id = uuid.uuid4()
    async with ctx.write() as conn:
        if check is not None:
            await check(conn, values)
        await records.insert_record(conn, res.table, ctx.organization_id, record_id, values)
        if after is not None:
            await after(conn, record_id)
        await ctx.audit(conn, f"{res.kind}.create", res.kind, record_id)
        row = await load(conn, ctx, res, record_id)
    return res.serialize(row, ctx.sees_contact_data)


async def update_record(
    ctx: AdminContext,
    res: Resource[R],
    record_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    check: Callable[[AsyncConnection, R, dict[str, Any]], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Change the given fields; the audit event names the fields, never their values."""
    res.require_write(ctx)
    async with ctx.write() as conn:
        current = await load(conn, ctx, res, record_id)
        if check is not None:
            await check(conn, current, changes)
        await records.update_record(conn, res.table, ctx.organization_id, record_id, changes)
        await ctx.audit(
            conn, f"{res.kind}.update", res.kind, record_id, {"fields": sorted(changes)}
        )
        row = await load(conn, ctx, res, record_id)
    return res.serialize(row, ctx.sees_contact_data)


async def set_archived(
    ctx: AdminContext,
    res: Resource[R],
    record_id: uuid.UUID,
    *,
    archive: bool,
    check: Callable[[AsyncConnection, R], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Archive (or restore) a record. Doing it twice is harmless: the second call changes nothing,
    records no event and says `changed: false`."""
    res.require_write(ctx)
    async with ctx.write() as conn:
        current = await load(conn, ctx, res, record_id)
        changed = res.archived(current) != archive
        if changed:
            if check is not None:
                await check(conn, current)
            await records.update_record(
                conn, res.table, ctx.organization_id, record_id, res.archive_values(archive)
            )
            action = "archive" if archive else "restore"
            await ctx.audit(conn, f"{res.kind}.{action}", res.kind, record_id)
        row = await load(conn, ctx, res, record_id)
    return res.serialize(row, ctx.sees_contact_data), changed


def instant(value: Any) -> str | None:
    return None if value is None else iso_utc(value)
