"""Tenant and role scoping, applied in one place to every query that reads people or sessions.

Rules (docs/API.md): everything is limited to the caller's organization. A therapist sees their own sessions
and the sessions of the clients on their caseload, only themselves among therapists and only their caseload
among clients. Ids the caller may not see behave exactly like ids that do not exist.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement, Uuid, bindparam, false, or_, select

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.errors import NotFound
from therapy_scheduler.models import Caseload, Client, Session, Therapist

# The caller's organization and therapist as bind parameters, for statements built once per kind
# of scope (and cached): they take the caller's values at execution, from `scope_params`.
CALLER_ORGANIZATION = bindparam("scope_organization_id", type_=Uuid())
CALLER_THERAPIST = bindparam("scope_therapist_id", type_=Uuid())

ScopeKind = Literal["organization", "own", "nothing"]


def scope_kind(principal: Principal) -> ScopeKind:
    """ "organization": the whole organization; "own": a therapist's own people; "nothing"."""
    if principal.can(Capability.READ_ORG_SCHEDULE):
        return "organization"
    return "nothing" if principal.therapist_id is None else "own"


def scope_params(principal: Principal) -> dict[str, Any]:
    return {
        "scope_organization_id": principal.organization_id,
        "scope_therapist_id": principal.therapist_id,
    }


def caseload_client_ids(principal: Principal) -> Any:
    """Subquery of the client ids on the calling therapist's caseload."""
    return _caseload(principal.therapist_id)


def _caseload(therapist: Any) -> Any:
    return select(Caseload.client_id).where(Caseload.therapist_id == therapist)


def session_scope_for(
    kind: ScopeKind,
    table: Any = Session,
    organization: Any = CALLER_ORGANIZATION,
    therapist: Any = CALLER_THERAPIST,
) -> ColumnElement[bool]:
    """WHERE clause limiting a sessions-like table (therapist_id, client_id, organization_id)."""
    if kind == "nothing":
        return false()
    in_org: ColumnElement[bool] = table.organization_id == organization
    if kind == "organization":
        return in_org
    mine: ColumnElement[bool] = in_org & or_(
        table.therapist_id == therapist, table.client_id.in_(_caseload(therapist))
    )
    return mine


def therapist_scope_for(
    kind: ScopeKind, organization: Any = CALLER_ORGANIZATION, therapist: Any = CALLER_THERAPIST
) -> ColumnElement[bool]:
    if kind == "nothing":
        return false()
    in_org: ColumnElement[bool] = Therapist.organization_id == organization
    return in_org if kind == "organization" else in_org & (Therapist.id == therapist)


def client_scope_for(
    kind: ScopeKind, organization: Any = CALLER_ORGANIZATION, therapist: Any = CALLER_THERAPIST
) -> ColumnElement[bool]:
    if kind == "nothing":
        return false()
    in_org: ColumnElement[bool] = Client.organization_id == organization
    return in_org if kind == "organization" else in_org & Client.id.in_(_caseload(therapist))


def session_scope(principal: Principal, table: Any = Session) -> ColumnElement[bool]:
    return session_scope_for(
        scope_kind(principal), table, principal.organization_id, principal.therapist_id
    )


def therapist_scope(principal: Principal) -> ColumnElement[bool]:
    return therapist_scope_for(
        scope_kind(principal), principal.organization_id, principal.therapist_id
    )


def client_scope(principal: Principal) -> ColumnElement[bool]:
    return client_scope_for(
        scope_kind(principal), principal.organization_id, principal.therapist_id
    )


def not_visible(kind: str) -> NotFound:
    """The 404 of ids of this kind ("therapist", "client") not all visible to the caller (also
    for a statement that checks them itself). It names no hidden id."""
    return NotFound(f"One or more {kind} ids were not found", details={"field": f"{kind}_ids"})
