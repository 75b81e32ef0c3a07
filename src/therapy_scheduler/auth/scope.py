"""Tenant and role scoping, applied in one place to every query that reads people or sessions.

Rules (SPEC §4): everything is limited to the caller's organization. A therapist sees their own sessions
and the sessions of the clients on their caseload, only themselves among therapists and only their caseload
among clients. Ids the caller may not see behave exactly like ids that do not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.errors import NotFound
from therapy_scheduler.models import Caseload, Client, Session, Therapist


def caseload_client_ids(principal: Principal) -> Any:
    """Subquery of the client ids on the calling therapist's caseload."""
    return select(Caseload.client_id).where(Caseload.therapist_id == principal.therapist_id)


def session_scope(principal: Principal, table: Any = Session) -> ColumnElement[bool]:
    """WHERE clause limiting a sessions-like table (therapist_id, client_id, organization_id)."""
    in_org: ColumnElement[bool] = table.organization_id == principal.organization_id
    if principal.can(Capability.READ_ORG_SCHEDULE):
        return in_org
    if principal.therapist_id is None:
        return false()
    mine: ColumnElement[bool] = in_org & or_(
        table.therapist_id == principal.therapist_id,
        table.client_id.in_(caseload_client_ids(principal)),
    )
    return mine


def therapist_scope(principal: Principal) -> ColumnElement[bool]:
    in_org = Therapist.organization_id == principal.organization_id
    if principal.can(Capability.READ_ORG_SCHEDULE):
        return in_org
    if principal.therapist_id is None:
        return false()
    return in_org & (Therapist.id == principal.therapist_id)


def client_scope(principal: Principal) -> ColumnElement[bool]:
    in_org = Client.organization_id == principal.organization_id
    if principal.can(Capability.READ_ORG_SCHEDULE):
        return in_org
    if principal.therapist_id is None:
        return false()
    return in_org & Client.id.in_(caseload_client_ids(principal))


async def require_visible(
    conn: AsyncConnection,
    principal: Principal,
    *,
    therapist_ids: Iterable[uuid.UUID] = (),
    client_ids: Iterable[uuid.UUID] = (),
) -> None:
    """404 unless every id is a therapist/client the caller may see. The error names no hidden id."""
    for model, scope, ids, kind in (
        (Therapist, therapist_scope, set(therapist_ids), "therapist"),
        (Client, client_scope, set(client_ids), "client"),
    ):
        if not ids:
            continue
        found = set(
            (await conn.execute(select(model.id).where(scope(principal), model.id.in_(ids))))
            .scalars()
            .all()
        )
        if found != ids:
            raise NotFound(
                f"One or more {kind} ids were not found", details={"field": f"{kind}_ids"}
            )
