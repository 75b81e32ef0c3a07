"""The caller of a request: their user row, organization and role, loaded fresh on every request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability, role_can
from therapy_scheduler.errors import Forbidden, Unauthorized
from therapy_scheduler.models import Organization, User
from therapy_scheduler.reference.settings import OrganizationSettings


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    therapist_id: uuid.UUID | None
    organization_time_zone: str
    raw_settings: dict[str, Any]

    def can(self, capability: Capability) -> bool:
        return role_can(self.role, capability)

    def require(self, capability: Capability, message: str) -> None:
        if not self.can(capability):
            raise Forbidden(message, details={"capability": capability.value})

    @cached_property
    def settings(self) -> OrganizationSettings:
        return OrganizationSettings.load(self.raw_settings)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.organization_time_zone)

    @property
    def scope_key(self) -> str:
        """Identifies everything that changes what this caller may see (for server-side caches)."""
        if self.role == "therapist":
            return f"therapist:{self.therapist_id}"
        return self.role


_USER_QUERY = (
    select(
        User.id,
        User.organization_id,
        User.role,
        User.therapist_id,
        Organization.time_zone,
        Organization.settings,
    )
    .join(Organization, Organization.id == User.organization_id)
    .where(User.is_active.is_(True), User.id == bindparam("user_id"))
)


async def bearer_user_id(request: Request) -> uuid.UUID:
    """The user id of the request's verified bearer token (else 401)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    user_id: uuid.UUID = await request.app.state.tokens.user_id(token.strip())
    return user_id


async def load_principal(conn: AsyncConnection, user_id: uuid.UUID) -> Principal:
    """The active user `user_id` with their organization, read on `conn` (else 401)."""
    row = (await conn.execute(_USER_QUERY, {"user_id": user_id})).first()
    if row is None:
        raise Unauthorized("Unknown or inactive user")
    return Principal(
        user_id=row.id,
        organization_id=row.organization_id,
        role=row.role,
        therapist_id=row.therapist_id,
        organization_time_zone=row.time_zone,
        raw_settings=row.settings or {},
    )


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: verify the bearer token and load the active user it names (else 401)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    user_id = await bearer_user_id(request)
    async with request.app.state.db.reader.connect() as conn:
        principal = await load_principal(conn, user_id)
    request.state.principal = principal
    return principal


@dataclass(frozen=True)
class Reading:
    """A read request's caller and the one database connection the whole request reads on."""

    principal: Principal
    conn: AsyncConnection


async def reading(request: Request) -> AsyncIterator[Reading]:
    """FastAPI dependency of the read endpoints (use with `scope="function"`): like
    `current_principal`, but the caller is loaded on the connection the endpoint then reads on, so
    that a request checks out one pooled connection, not two (each checkout costs a pre-ping round
    trip)."""
    user_id = await bearer_user_id(request)
    async with request.app.state.db.read() as conn:
        principal = await load_principal(conn, user_id)
        request.state.principal = principal
        yield Reading(principal, conn)
