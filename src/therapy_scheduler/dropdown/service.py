"""Dropdown data: the people, places and vocabularies a form needs, scoped to the caller."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.domain.vocab import (
    CANCELLATION_REASONS,
    LOCATION_TYPES,
    SERVICE_CODES,
    SESSION_STATUSES,
)
from therapy_scheduler.dropdown import queries
from therapy_scheduler.errors import Forbidden
from therapy_scheduler.infra.cache import Cache
from therapy_scheduler.kit.time import iso_utc, utcnow

DROPDOWN_TYPES = (
    "therapists",
    "clients",
    "locations",
    "location_types",
    "service_codes",
    "session_statuses",
    "cancellation_reasons",
)


def cache_namespace(organization_id: object) -> str:
    """Writes to an organization's people or places invalidate this namespace."""
    return f"dropdown:{organization_id}"


async def invalidate_dropdowns(cache: Cache, organization_id: object) -> None:
    await cache.invalidate(cache_namespace(organization_id))


async def dropdown_data(
    *,
    conn_factory: Any,
    cache: Cache,
    ttl: float,
    principal: Principal,
    types: list[str],
    include_inactive: bool,
    include_contact: bool,
    version: int | None = None,
) -> tuple[dict[str, Any], bool, str]:
    """The requested lists for this caller, from the short-lived server cache when possible.

    `version`: the organization's change counter read before this call (infra/changes.py). It keys
    the cache, so that an answer cached before a write is never served under a newer version (the
    ETag of get-dropdown-data is built from it), whatever wrote and whether or not it invalidated
    the cache.

    Returns (data, cached, last_updated).
    """
    if include_inactive and not principal.can(Capability.SEE_INACTIVE_PEOPLE):
        raise Forbidden("Your role may not list inactive or archived people")
    if include_contact and not principal.can(Capability.SEE_CONTACT_DATA):
        raise Forbidden("Your role may not see contact data")
    wanted = sorted(set(types))
    generation = await cache.version(cache_namespace(principal.organization_id))
    key = (
        f"{cache_namespace(principal.organization_id)}:v{generation}:c{version}:"
        f"{principal.scope_key}:"
        f"{','.join(wanted)}:{int(include_inactive)}:{int(include_contact)}"
    )
    hit = await cache.get(key)
    if hit is not None:
        return hit["data"], True, hit["last_updated"]
    async with conn_factory() as conn:
        data = await _load(conn, principal, wanted, include_inactive, include_contact)
    last_updated = iso_utc(utcnow())
    await cache.set(key, {"data": data, "last_updated": last_updated}, ttl)
    return data, False, last_updated


async def _load(
    conn: AsyncConnection,
    principal: Principal,
    wanted: list[str],
    include_inactive: bool,
    include_contact: bool,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if "therapists" in wanted:
        therapists = await queries.therapists(
            conn, principal, include_inactive=include_inactive, include_contact=include_contact
        )
        data["therapists"] = [_therapist(t, include_contact) for t in therapists]
    if "clients" in wanted:
        clients = await queries.clients(
            conn, principal, include_inactive=include_inactive, include_contact=include_contact
        )
        data["clients"] = [_client(c, include_contact) for c in clients]
    if "locations" in wanted:
        places = await queries.locations(
            conn, principal.organization_id, include_inactive=include_inactive
        )
        data["locations"] = [_location(p) for p in places]
    if "location_types" in wanted:
        data["location_types"] = [{"value": k, "label": v} for k, v in LOCATION_TYPES.items()]
    if "service_codes" in wanted:
        data["service_codes"] = [
            {"code": s.code, "label": s.label, "unit_minutes": s.unit_minutes}
            for s in SERVICE_CODES.values()
        ]
    if "session_statuses" in wanted:
        data["session_statuses"] = [{"value": k, "label": v} for k, v in SESSION_STATUSES.items()]
    if "cancellation_reasons" in wanted:
        data["cancellation_reasons"] = [
            {"code": r.code, "label": r.label, "attributed_to": r.attributed_to}
            for r in CANCELLATION_REASONS.values()
        ]
    return data


def _therapist(t: queries.TherapistOption, contact: bool) -> dict[str, Any]:
    out = {
        "id": str(t.id),
        "full_name": t.full_name,
        "credential": t.credential,
        "status": t.status,
    }
    return _with_contact(out, t, contact)


def _client(c: queries.ClientOption, contact: bool) -> dict[str, Any]:
    return _with_contact(
        {"id": str(c.id), "full_name": c.full_name, "status": c.status}, c, contact
    )


def _with_contact(
    out: dict[str, Any], person: queries.TherapistOption | queries.ClientOption, contact: bool
) -> dict[str, Any]:
    if contact:
        out["email"] = person.email
        out["phone"] = person.phone
    return out


def _location(p: queries.LocationOption) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "location_type": p.location_type,
        "is_active": p.is_active,
    }
