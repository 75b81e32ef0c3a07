"""Therapists and clients (with their caseload) of the caller's organization.

Who may do what (docs/API.md, roles): admins and schedulers read all three and manage clients and locations;
only admins manage therapists. Emails and phones appear only for roles that may see contact data.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin import crud
from therapy_scheduler.admin.common import AdminContext
from therapy_scheduler.admin.crud import Resource, instant
from therapy_scheduler.admin.queries import people as queries
from therapy_scheduler.admin.queries.people import ClientRow, TherapistRow
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
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import utcnow

C = Capability


def _with_contact(
    out: dict[str, Any], row: TherapistRow | ClientRow, contact: bool
) -> dict[str, Any]:
    if contact:
        out["email"] = row.email
        out["phone"] = row.phone
    return out


def serialize_therapist(row: TherapistRow, contact: bool) -> dict[str, Any]:
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


def serialize_client(row: ClientRow, contact: bool) -> dict[str, Any]:
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
    "therapist", queries.THERAPISTS, C.MANAGE_CLIENTS, C.MANAGE_STAFF,
    serialize_therapist, "archived_at",
)  # fmt: skip
CLIENTS = Resource(
    "client", queries.CLIENTS, C.MANAGE_CLIENTS, C.MANAGE_CLIENTS,
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
    filters = queries.therapist_filters(
        status=params.status, q=params.q, include_archived=params.include_archived
    )
    return await crud.list_records(ctx, THERAPISTS, params, filters)


async def update_therapist(
    *, ctx: AdminContext, therapist_id: uuid.UUID, patch: TherapistPatch
) -> dict[str, Any]:
    """Change the given fields. Stored time off keeps its instants when the time zone changes."""
    return await crud.update_record(ctx, THERAPISTS, therapist_id, patch.changes())


async def archive_person(
    *, ctx: AdminContext, kind: Literal["therapist", "client"], person_id: uuid.UUID, archive: bool
) -> dict[str, Any]:
    """Archive or restore a therapist or client. Sessions stay as they are; the answer counts the
    person's upcoming scheduled sessions so that the caller can move or cancel them."""
    if kind == "therapist":
        record, changed = await crud.set_archived(ctx, THERAPISTS, person_id, archive=archive)
    else:
        record, changed = await crud.set_archived(ctx, CLIENTS, person_id, archive=archive)
    async with ctx.db.read() as conn:
        upcoming = await queries.upcoming_sessions(
            conn, ctx.organization_id, kind, person_id, now=utcnow()
        )
    return ok(data=record, changed=changed, upcoming_sessions=upcoming)


# --- clients and caseloads ----------------------------------------------------------------------


async def _require_therapists(
    conn: AsyncConnection, ctx: AdminContext, therapist_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The distinct ids, in order; 404 unless every one is a therapist of the organization."""
    wanted = list(dict.fromkeys(therapist_ids))
    if not wanted:
        return []
    found = await queries.therapists_found(conn, ctx.organization_id, wanted)
    if found != set(wanted):
        raise NotFound(
            "One or more therapist ids were not found", details={"field": "therapist_ids"}
        )
    return wanted


async def create_client(*, ctx: AdminContext, body: ClientCreate) -> dict[str, Any]:
    """A new client, optionally with the therapists of their caseload."""
    values = body.model_dump(exclude={"therapist_ids"})
    values["created_at"] = utcnow()
    caseload: list[uuid.UUID] = []

    async def check(conn: AsyncConnection, _values: dict[str, Any]) -> None:
        caseload.extend(await _require_therapists(conn, ctx, body.therapist_ids))

    async def after(conn: AsyncConnection, client_id: uuid.UUID) -> None:
        await queries.replace_caseload(conn, ctx.organization_id, client_id, caseload)

    return await crud.create_record(ctx, CLIENTS, values, check=check, after=after)


async def list_clients(*, ctx: AdminContext, params: ClientListParams) -> dict[str, Any]:
    """Clients by name; archived ones only when asked; optionally one therapist's caseload."""
    filters = queries.client_filters(
        status=params.status,
        q=params.q,
        include_archived=params.include_archived,
        therapist_id=params.therapist_id,
    )
    return await crud.list_records(ctx, CLIENTS, params, filters)


async def update_client(
    *, ctx: AdminContext, client_id: uuid.UUID, patch: ClientPatch
) -> dict[str, Any]:
    return await crud.update_record(ctx, CLIENTS, client_id, patch.changes())


async def _caseload(
    conn: AsyncConnection, ctx: AdminContext, client_id: uuid.UUID
) -> dict[str, Any]:
    rows = await queries.caseload(conn, ctx.organization_id, client_id)
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
    return ok(data={"client_id": str(client_id), "therapists": therapists})


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
        await queries.replace_caseload(conn, ctx.organization_id, client_id, wanted)
        await ctx.audit(
            conn,
            "client.caseload.replace",
            "client",
            client_id,
            {"therapist_ids": [str(t) for t in wanted]},
        )
        return await _caseload(conn, ctx, client_id)
