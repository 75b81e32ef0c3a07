"""Shared plumbing of the admin API: the request context, writes with audit and cache invalidation,
keyset pages, and the error helpers every admin service uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field
from sqlalchemy import ColumnElement, Row, Select, func, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.dropdown.service import invalidate_dropdowns
from therapy_scheduler.errors import InvalidCursor, NotFound, ValidationFailed
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra.cache import Cache
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.params import TrimmedModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


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


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]
    next_cursor: str | None

    def envelope(self, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
        return {
            "success": True,
            "data": items,
            "pagination": {
                "limit": limit,
                "has_more": self.next_cursor is not None,
                "next_cursor": self.next_cursor,
            },
        }


async def keyset_page(
    conn: AsyncConnection,
    query: Select[Any],
    *,
    kind: str,
    id_column: Any,
    sort_columns: Sequence[Any],
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> Page:
    """Rows of `query` after the cursor's row, ordered by `sort_columns` then id.

    The cursor names only the last row's id; its sort key is read back within the same filters, so a
    cursor from another organization or list is refused like a malformed one.
    """
    keys = [*sort_columns, id_column]
    if cursor is not None:
        (after,) = decode_cursor(kind, cursor, (uuid.UUID,))
        anchor = (
            await conn.execute(query.with_only_columns(*keys).where(id_column == after))
        ).first()
        if anchor is None:
            raise InvalidCursor("The cursor is not valid; start again from the first page")
        position = tuple_(*keys)
        query = query.where(position < tuple(anchor) if descending else position > tuple(anchor))
    order = [k.desc() for k in keys] if descending else keys
    rows = list((await conn.execute(query.order_by(*order).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return Page(rows, encode_cursor(kind, last._mapping[id_column.key]) if last else None)


def name_filter(column: Any, q: str) -> ColumnElement[bool]:
    """Case-insensitive substring search; % and _ in the search text are literal."""
    result: ColumnElement[bool] = func.lower(column).contains(q.lower(), autoescape=True)
    return result


def not_found(kind: str) -> NotFound:
    return NotFound(f"{kind.capitalize()} not found", details={"entity": kind})


def invalid(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    """A 400 VALIDATION_ERROR shaped like the request-validation ones (`details.fields`)."""
    return ValidationFailed(
        f"Invalid request: {field}: {message}",
        details={"fields": [{"field": field, "message": message, "type": type_}]},
    )


async def fetch_one(conn: AsyncConnection, query: Any, kind: str) -> Row[Any]:
    row: Row[Any] | None = (await conn.execute(query)).first()
    if row is None:
        raise not_found(kind)
    return row
