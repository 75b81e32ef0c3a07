"""Therapists and clients (with their caseload) of the caller's organization.

Who may do what (docs/API.md, roles): admins and schedulers read all three and manage clients and locations;
only admins manage therapists. Emails and phones appear only for roles that may see contact data.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin import crud
from therapy_scheduler.admin.common import AdminContext, name_filter
from therapy_scheduler.admin.crud import Resource, instant
from therapy_scheduler.admin.schemas import (
    CaseloadPut,
    ClientCreate,
    ClientListParams,
    ClientPatch,
    TherapistCreate,
    TherapistListParams,
    TherapistPatch,
)
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.errors import NotFound
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import Caseload, Client, Session, Therapist

C = Capability


def _with_contact(out: dict[str, Any], row: Row[Any], contact: bool) -> dict[str, Any]:
    if contact:
        out["email"] = row.email
        out["phone"] = row.phone
    return out


def serialize_therapist(row: Row[Any], contact: bool) -> dict[str, Any]:
    out = {
        "id": str(row.id),
        "full_name": row.full_name,
        "credential": row.credential,
        "specialties": list(row.specialties or []),
        "time_zone": row.time_zone,
        "status": row.status,
        "archived_at": instant(row.archived_at),
        "created_at": instant(row.created_at),
    }
    return _with_contact(out, row, contact)


def serialize_client(row: Row[Any], contact: bool) -> dict[str, Any]:
    out = {
        "id": str(row.id),
        "full_name": row.full_name,
        "date_of_birth": row.date_of_birth.isoformat() if row.date_of_birth else None,
        "status": row.status,
        "archived_at": instant(row.archived_at),
        "created_at": instant(row.created_at),
    }
    return _with_contact(out, row, contact)


THERAPISTS = Resource(
    "therapist", Therapist, Therapist.full_name, C.MANAGE_CLIENTS, C.MANAGE_STAFF,
    serialize_therapist, "archived_at",
)  # fmt: skip
CLIENTS = Resource(
    "client", Client, Client.full_name, C.MANAGE_CLIENTS, C.MANAGE_CLIENTS,
    serialize_client, "archived_at",
)  # fmt: skip
# --- therapists ---------------------------------------------------------------------------------


async def create_therapist(*, ctx: AdminContext, body: TherapistCreate) -> dict[str, Any]:
    """A new therapist; the time zone defaults to the organization's."""
    values = body.model_dump()
    values["time_zone"] = body.time_zone or ctx.principal.organization_time_zone
    values["created_at"] = utcnow()
    return await crud.create_record(ctx, THERAPISTS, values)


async def list_therapists(*, ctx: AdminContext, params: TherapistListParams) -> dict[str, Any]:
    """Therapists by name; archived ones only when asked."""
    filters: list[ColumnElement[bool]] = []
    if params.status:
        filters.append(Therapist.status == params.status)
    if params.q:
        filters.append(name_filter(Therapist.full_name, params.q))
    if not params.include_archived:
        filters.append(Therapist.archived_at.is_(None))
    return await crud.list_records(ctx, THERAPISTS, params, filters)


async def update_therapist(
    *, ctx: AdminContext, therapist_id: uuid.UUID, patch: TherapistPatch
) -> dict[str, Any]:
    """Change the given fields. Stored time off keeps its instants when the time zone changes."""
    return await crud.update_record(ctx, THERAPISTS, therapist_id, patch.changes())


async def archive_person(
    *, ctx: AdminContext, kind: str, person_id: uuid.UUID, archive: bool
) -> dict[str, Any]:
    """Archive or restore a therapist or client. Sessions stay as they are; the answer counts the
    person's upcoming scheduled sessions so that the caller can move or cancel them."""
    res = THERAPISTS if kind == "therapist" else CLIENTS
    record, changed = await crud.set_archived(ctx, res, person_id, archive=archive)
    column = Session.therapist_id if kind == "therapist" else Session.client_id
    async with ctx.db.read() as conn:
        upcoming = (
            await conn.execute(
                select(func.count())
                .select_from(Session)
                .where(
                    column == person_id,
                    Session.organization_id == ctx.organization_id,
                    Session.status == "scheduled",
                    Session.start_time > utcnow(),
                )
            )
        ).scalar_one()
    return {"success": True, "data": record, "changed": changed, "upcoming_sessions": upcoming}


# --- clients and caseloads ----------------------------------------------------------------------


async def _require_therapists(
    conn: AsyncConnection, ctx: AdminContext, therapist_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The distinct ids, in order; 404 unless every one is a therapist of the organization."""
    wanted = list(dict.fromkeys(therapist_ids))
    if not wanted:
        return []
    found = set(
        (
            await conn.execute(
                select(Therapist.id).where(
                    Therapist.organization_id == ctx.organization_id, Therapist.id.in_(wanted)
                )
            )
        )
        .scalars()
        .all()
    )
    if found != set(wanted):
        raise NotFound(
            "One or more therapist ids were not found", details={"field": "therapist_ids"}
        )
    return wanted


async def _replace_caseload(
    conn: AsyncConnection, ctx: AdminContext, client_id: uuid.UUID, therapist_ids: list[uuid.UUID]
) -> None:
    await conn.execute(delete(Caseload).where(Caseload.client_id == client_id))
    if therapist_ids:
        await conn.execute(
            insert(Caseload),
            [
                {"therapist_id": t, "client_id": client_id, "organization_id": ctx.organization_id}
                for t in therapist_ids
            ],
        )


async def create_client(*, ctx: AdminContext, body: ClientCreate) -> dict[str, Any]:
    """A new client, optionally with the therapists of their caseload."""
    values = body.model_dump(exclude={"therapist_ids"})
    values["created_at"] = utcnow()
    caseload: list[uuid.UUID] = []

    async def check(conn: AsyncConnection, _values: dict[str, Any]) -> None:
        caseload.extend(await _require_therapists(conn, ctx, body.therapist_ids))

    async def after(conn: AsyncConnection, client_id: uuid.UUID) -> None:
        await _replace_caseload(conn, ctx, client_id, caseload)

    return await crud.create_record(ctx, CLIENTS, values, check=check, after=after)


async def list_clients(*, ctx: AdminContext, params: ClientListParams) -> dict[str, Any]:
    """Clients by name; archived ones only when asked; optionally one therapist's caseload."""
    filters: list[ColumnElement[bool]] = []
    if params.status:
        filters.append(Client.status == params.status)
    if params.q:
        filters.append(name_filter(Client.full_name, params.q))
    if not params.include_archived:
        filters.append(Client.archived_at.is_(None))
    if params.therapist_id:
        filters.append(
            Client.id.in_(
                select(Caseload.client_id).where(Caseload.therapist_id == params.therapist_id)
            )
        )
    return await crud.list_records(ctx, CLIENTS, params, filters)


async def update_client(
    *, ctx: AdminContext, client_id: uuid.UUID, patch: ClientPatch
) -> dict[str, Any]:
    return await crud.update_record(ctx, CLIENTS, client_id, patch.changes())


async def _caseload(
    conn: AsyncConnection, ctx: AdminContext, client_id: uuid.UUID
) -> dict[str, Any]:
    rows = await conn.execute(
        select(
            Therapist.id,
            Therapist.full_name,
            Therapist.credential,
            Therapist.status,
            Therapist.archived_at,
        )
        .join(Caseload, Caseload.therapist_id == Therapist.id)
        .where(Caseload.client_id == client_id, Therapist.organization_id == ctx.organization_id)
        .order_by(Therapist.full_name, Therapist.id)
    )
    therapists = [
        {
            "id": str(r.id),
            "full_name": r.full_name,
            "credential": r.credential,
            "status": r.status,
            "archived_at": instant(r.archived_at),
        }
        for r in rows
    ]
    return {"success": True, "data": {"client_id": str(client_id), "therapists": therapists}}


async def get_caseload(*, ctx: AdminContext, client_id: uuid.UUID) -> dict[str, Any]:
    """The therapists assigned to a client, by name."""
    CLIENTS.require_read(ctx)
    async with ctx.db.read() as conn:
        await crud.load(conn, ctx, CLIENTS, client_id)
        return await _caseload(conn, ctx, client_id)


async def put_caseload(
    *, ctx: AdminContext, client_id: uuid.UUID, body: CaseloadPut
) -> dict[str, Any]:
    """Replace the client's caseload with exactly these therapists."""
    CLIENTS.require_write(ctx)
    async with ctx.write() as conn:
        await crud.load(conn, ctx, CLIENTS, client_id)
        wanted = await _require_therapists(conn, ctx, body.therapist_ids)
        await _replace_caseload(conn, ctx, client_id, wanted)
        await ctx.audit(
            conn,
            "client.caseload.replace",
            "client",
            client_id,
            {"therapist_ids": [str(t) for t in wanted]},
        )
        return await _caseload(conn, ctx, client_id)
