"""The caller of a request: their user row, organization and role, loaded fresh on every request."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import Select, Uuid, bindparam, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability, role_can
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.errors import Conflict, Forbidden, Unauthorized
from therapy_scheduler.infra.replica import CallerCheck, caller_position, current_freshness
from therapy_scheduler.models import Caseload, Organization, User

_T = TypeVar("_T")


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
        return OrganizationSettings.of_row(self.raw_settings)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.organization_time_zone)

    @property
    def scope_key(self) -> str:
        """Identifies everything that changes what this caller may see (for server-side caches)."""
        if self.role == "therapist":
            return f"therapist:{self.therapist_id}"
        return self.role


def caller_row() -> Select[Any]:
    """The columns a `Principal` is made of, for the active user `:caller_id` (no row otherwise)."""
    return (
        select(
            User.id,
            User.organization_id,
            User.role,
            User.therapist_id,
            Organization.time_zone,
            Organization.settings,
        )
        .join(Organization, Organization.id == User.organization_id)
        .where(User.is_active.is_(True), User.id == bindparam("caller_id", type_=Uuid()))
    )


_USER_QUERY = caller_row()

# With a read replica (PostgreSQL only): the caller and the clients on their caseload, read on the
# primary; the replica serves the request only if it returns the same row (infra/replica.py).
_CASELOAD = (
    select(func.array_agg(aggregate_order_by(Caseload.client_id, Caseload.client_id)))
    .where(Caseload.therapist_id == User.therapist_id)
    .scalar_subquery()
)
_FRESH_USER_QUERY = caller_row().add_columns(_CASELOAD.label("caseload"))
# On the primary, one more column: the position the caller's reads need (their last write, stored
# on the primary by any API process; infra/replica.py). Never on the replica, which has no positions.
_PRIMARY_USER_QUERY = _FRESH_USER_QUERY.add_columns(
    caller_position(User.id, User.organization_id).label("write_position")
)


def principal_from(row: Any, prefix: str = "") -> Principal | None:
    """The principal of a row with the columns of `caller_row`, each name preceded by `prefix`
    (None when they are NULL: an unknown or inactive user)."""
    if row is None or getattr(row, prefix + "id") is None:
        return None
    return Principal(
        user_id=getattr(row, prefix + "id"),
        organization_id=getattr(row, prefix + "organization_id"),
        role=getattr(row, prefix + "role"),
        therapist_id=getattr(row, prefix + "therapist_id"),
        organization_time_zone=getattr(row, prefix + "time_zone"),
        raw_settings=getattr(row, prefix + "settings") or {},
    )


async def bearer_user_id(request: Request) -> uuid.UUID:
    """The user id of the request's verified bearer token (else 401)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    user_id: uuid.UUID = await request.app.state.tokens.user_id(token.strip())
    return user_id


async def load_principal_from_primary(request: Request, user_id: uuid.UUID) -> Principal:
    """With a read replica: the active user `user_id` as the primary has them now (else 401), so
    that a deactivation, a role change or a caseload change applies to the very next request
    whatever the replica's lag. The replica then serves this request only if it shows the same
    caller and caseload, and has replayed the caller's last write, whichever API process made it
    (docs/DECISIONS.md, "Scale-out: replica reads and PgBouncer")."""
    params = {"caller_id": user_id}
    async with request.app.state.db.primary_read() as conn:
        row = (await conn.execute(_PRIMARY_USER_QUERY, params)).first()
    principal = principal_from(row)
    if principal is None:
        raise Unauthorized("Unknown or inactive user")
    fresh = current_freshness()
    if fresh is not None:
        *caller, position = tuple(row)
        fresh.caller = CallerCheck(_FRESH_USER_QUERY, params, tuple(caller))
        # The request's writes are this user's (infra/db.py `Database._note_commit`).
        fresh.user_id, fresh.organization_id = user_id, principal.organization_id
        fresh.min_position = max(fresh.min_position, int(position))
        fresh.verified = False
    return principal


async def load_principal(conn: AsyncConnection, user_id: uuid.UUID) -> Principal:
    """The active user `user_id` with their organization, read on `conn` (else 401)."""
    principal = principal_from((await conn.execute(_USER_QUERY, {"caller_id": user_id})).first())
    if principal is None:
        raise Unauthorized("Unknown or inactive user")
    return principal


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: verify the bearer token and load the active user it names (else 401)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    user_id = await bearer_user_id(request)
    if request.app.state.db.has_replica:
        principal = await load_principal_from_primary(request, user_id)
    else:
        async with request.app.state.db.reader.connect() as conn:
            principal = await load_principal(conn, user_id)
    request.state.principal = principal
    request.app.state.callers.remember(principal)
    return principal


async def known_or_loaded(request: Request, conn: AsyncConnection, user_id: uuid.UUID) -> Principal:
    """The principal this process knows for `user_id`, else loaded on `conn` (401 if inactive): a
    guess of who the caller is, never trusted without a check (`Reading.as_caller`, or a tag that
    only matches while nothing was written: docs/DECISIONS.md, "Conditional requests")."""
    known: KnownCallers = request.app.state.callers
    principal = known.get(user_id)
    if principal is None:
        principal = await load_principal(conn, user_id)
        known.remember(principal)
    return principal


class CallerChanged(Exception):
    """A statement that re-read its caller found them different from the principal it assumed."""


class KnownCallers:
    """The principals this process has recently loaded, by user id: only a guess of who a caller is,
    so that a read can re-check the caller inside its own statement instead of loading them first
    (one round trip fewer). Never trusted without that check. LRU-bounded."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._principals: OrderedDict[uuid.UUID, Principal] = OrderedDict()

    def get(self, user_id: uuid.UUID) -> Principal | None:
        principal = self._principals.get(user_id)
        if principal is not None:
            self._principals.move_to_end(user_id)
        return principal

    def remember(self, principal: Principal) -> None:
        self._principals[principal.user_id] = principal
        self._principals.move_to_end(principal.user_id)
        if len(self._principals) > self._size:
            self._principals.popitem(last=False)

    def forget(self, user_id: uuid.UUID) -> None:
        self._principals.pop(user_id, None)


@dataclass(frozen=True)
class Reading:
    """A read request's verified bearer, and the one database connection the request reads on."""

    request: Request
    user_id: uuid.UUID
    conn: AsyncConnection

    async def assumed_principal(self) -> Principal:
        """The principal `as_caller` tries first (`known_or_loaded`)."""
        return await known_or_loaded(self.request, self.conn, self.user_id)

    async def as_caller(self, read: Callable[[Principal], Awaitable[_T]]) -> _T:
        """`read(principal)`, where `read` runs one statement that also re-reads the caller and
        raises `CallerChanged` when they are not `principal` any more (role, therapist, organization,
        its time zone or settings changed, or the user was deactivated). The first try uses the
        principal this process knew for the user, if any; a changed or unknown caller is loaded
        (401 if inactive) and the read runs again."""
        known: KnownCallers = self.request.app.state.callers
        principal = known.get(self.user_id)
        for _ in range(3):
            if principal is None:
                if self.request.app.state.db.has_replica:
                    principal = await load_principal_from_primary(self.request, self.user_id)
                else:
                    principal = await load_principal(self.conn, self.user_id)
                known.remember(principal)
            self.request.state.principal = principal
            try:
                return await read(principal)
            except CallerChanged:
                known.forget(self.user_id)
                principal = None
        raise Conflict("Your account changed during the request; please retry")


async def reading(request: Request) -> AsyncIterator[Reading]:
    """FastAPI dependency of the read endpoints (use with `scope="function"`): the verified bearer
    and one pooled read connection for the whole request; `Reading.as_caller` runs the read as the
    current principal."""
    user_id = await bearer_user_id(request)
    if request.app.state.db.has_replica:
        # The caller from the primary first: the replica's view of them may be older.
        request.app.state.callers.remember(await load_principal_from_primary(request, user_id))
    async with request.app.state.db.read() as conn:
        yield Reading(request, user_id, conn)
