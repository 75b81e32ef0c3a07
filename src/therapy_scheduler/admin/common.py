"""Shared plumbing of the admin API: the request context, writes with audit and cache invalidation,
the answer of a list, and the error helpers every admin service uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.queries.records import Page
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.dropdown.service import invalidate_dropdowns
from therapy_scheduler.errors import NotFound, ValidationFailed
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra.cache import Cache
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.params import TrimmedModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True)
class AdminContext:
    """Who is calling and the service's shared resources, for one admin request."""

    db: Database
    cache: Cache
    principal: Principal
    request_id: str | None

    @property
    def organization_id(self) -> uuid.UUID:
        return self.principal.organization_id

    @property
    def sees_contact_data(self) -> bool:
        return self.principal.can(Capability.SEE_CONTACT_DATA)

    def require(self, capability: Capability, message: str) -> None:
        self.principal.require(capability, message)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; the dropdown caches are invalidated only once it has committed."""
        async with self.db.write() as conn:
            yield conn
        await invalidate_dropdowns(self.cache, self.organization_id)

    async def audit(
        self,
        conn: AsyncConnection,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID | str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """An audit event in the write's own transaction (ids, codes and field names only)."""
        await audit.record(
            conn,
            organization_id=self.organization_id,
            actor_user_id=self.principal.user_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            request_id=self.request_id,
            details=details,
        )


async def admin_context(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> AdminContext:
    """FastAPI dependency: the caller (401 without a valid token) and the app's database and cache."""
    state = request.app.state
    return AdminContext(
        db=state.db,
        cache=state.cache,
        principal=principal,
        request_id=getattr(request.state, "request_id", None),
    )


class PageParams(TrimmedModel):
    """Keyset pagination shared by every admin list. Unknown parameters are refused, not ignored."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, min_length=1, max_length=256)


def page_envelope(page: Page[Any], items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The answer of a list: the page's items and how to get the next page."""
    return ok(
        data=items,
        pagination={
            "limit": limit,
            "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor,
        },
    )


def not_found(kind: str) -> NotFound:
    return NotFound(f"{kind.capitalize()} not found", details={"entity": kind})


def invalid(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    """A 400 VALIDATION_ERROR shaped like the request-validation ones (`details.fields`)."""
    return ValidationFailed(
        f"Invalid request: {field}: {message}",
        details={"fields": [{"field": field, "message": message, "type": type_}]},
    )


def found(record: T | None, kind: str) -> T:
    """The record that was read, or 404 when there is none."""
    if record is None:
        raise not_found(kind)
    return record
