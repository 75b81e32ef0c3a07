"""SQL of the admin API's therapists, clients and caseloads."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.queries.records import Table, name_filter
from therapy_scheduler.models import Caseload, Client, Session, Therapist


class TherapistRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    full_name: str
    email: str | None
    phone: str | None
    credential: str
    specialties: list[Any]
    time_zone: str
    status: str
    archived_at: datetime | None
    created_at: datetime


class ClientRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    full_name: str
    email: str | None
    phone: str | None
    date_of_birth: date | None
    status: str
    archived_at: datetime | None
    created_at: datetime


THERAPISTS = Table(Therapist, TherapistRow._fields, TherapistRow._make, Therapist.full_name)
CLIENTS = Table(Client, ClientRow._fields, ClientRow._make, Client.full_name)


def therapist_filters(
    *, status: str | None, q: str | None, include_archived: bool
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if status:
        filters.append(Therapist.status == status)
    if q:
        filters.append(name_filter(Therapist.full_name, q))
    if not include_archived:
        filters.append(Therapist.archived_at.is_(None))
    return filters


def client_filters(
    *, status: str | None, q: str | None, include_archived: bool, therapist_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    """`therapist_id`: only the clients of that therapist's caseload."""
    filters: list[ColumnElement[bool]] = []
    if status:
        filters.append(Client.status == status)
    if q:
        filters.append(name_filter(Client.full_name, q))
    if not include_archived:
        filters.append(Client.archived_at.is_(None))
    if therapist_id:
        filters.append(
            Client.id.in_(select(Caseload.client_id).where(Caseload.therapist_id == therapist_id))
        )
    return filters


async def upcoming_sessions(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    kind: Literal["therapist", "client"],
    person_id: uuid.UUID,
    *,
    now: datetime,
) -> int:
    """How many scheduled sessions of the therapist (or the client) start after `now`."""
    column = Session.therapist_id if kind == "therapist" else Session.client_id
    count: int = (
        await conn.execute(
            select(func.count())
            .select_from(Session)
            .where(
                column == person_id,
                Session.organization_id == organization_id,
                Session.status == "scheduled",
                Session.start_time > now,
            )
        )
    ).scalar_one()
    return count


async def therapists_found(
    conn: AsyncConnection, organization_id: uuid.UUID, therapist_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the ids that are therapists of the organization."""
    return set(
        (
            await conn.execute(
                select(Therapist.id).where(
                    Therapist.organization_id == organization_id, Therapist.id.in_(therapist_ids)
                )
            )
        )
        .scalars()
        .all()
    )


async def replace_caseload(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    therapist_ids: list[uuid.UUID],
) -> None:
    await conn.execute(delete(Caseload).where(Caseload.client_id == client_id))
    if therapist_ids:
        await conn.execute(
            insert(Caseload),
            [
                {"therapist_id": t, "client_id": client_id, "organization_id": organization_id}
                for t in therapist_ids
            ],
        )


class CaseloadTherapist(NamedTuple):
    id: uuid.UUID
    full_name: str
    credential: str
    status: str
    archived_at: datetime | None


async def caseload(
    conn: AsyncConnection, organization_id: uuid.UUID, client_id: uuid.UUID
) -> list[CaseloadTherapist]:
    """The therapists of the client's caseload, by name."""
    rows = await conn.execute(
        select(
            Therapist.id,
            Therapist.full_name,
            Therapist.credential,
            Therapist.status,
            Therapist.archived_at,
        )
        .join(Caseload, Caseload.therapist_id == Therapist.id)
        .where(Caseload.client_id == client_id, Therapist.organization_id == organization_id)
        .order_by(Therapist.full_name, Therapist.id)
    )
    return [CaseloadTherapist(*r) for r in rows]
