"""SQL of the audit log's read side (SQLAlchemy Core): a keyset page of one organization's events,
each with the clients it concerns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Boolean, ColumnElement, Row, Text, bindparam, column, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.models import AuditEvent
from therapy_scheduler.models.audit import CLIENT_IDS_POSTGRESQL
from therapy_scheduler.models.base import UTCDateTime

_E = AuditEvent

# SQLite's index of `audit_events.client_ids` (migration 0017): a table a trigger fills from each new
# event, not a model (nothing writes it but that trigger). PostgreSQL indexes the column itself.
_SQLITE_CLIENT_INDEX = table(
    "audit_event_clients",
    column("organization_id", _E.organization_id.type),
    column("client_id", Text()),
    column("occurred_at", UTCDateTime()),
    column("audit_event_id", _E.id.type),
)

# id, occurred_at, actor_user_id, action, entity_type, entity_id, request_id, details, client_ids
EventRow: TypeAlias = Row[
    int, datetime, uuid.UUID | None, str, str, str, str | None, dict[str, Any], list[str]
]


async def event_page(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    filters: AuditEventsParams,
    position: tuple[datetime, int] | None,
) -> Sequence[EventRow]:
    """The organization's events matching every filter, newest first, after `position` (the
    (occurred_at, id) of the previous page's last event): up to `filters.limit` + 1 of them, so
    that the caller knows whether another page follows."""
    query = select(
        _E.id,
        _E.occurred_at,
        _E.actor_user_id,
        _E.action,
        _E.entity_type,
        _E.entity_id,
        _E.request_id,
        _E.details,
        _E.client_ids,
    )
    t_col: ColumnElement[Any] = _E.__table__.c.occurred_at
    id_col: ColumnElement[Any] = _E.__table__.c.id
    if filters.client_id is not None and conn.dialect.name == "postgresql":
        # The GIN index of the column, or the (organization, time) index with this as a filter:
        # PostgreSQL's choice, by how often the client appears (its statistics of the elements).
        wanted = bindparam("client_ids", [str(filters.client_id)], type_=CLIENT_IDS_POSTGRESQL)
        query = query.where(_E.client_ids.op("@>", return_type=Boolean)(wanted))
    elif filters.client_id is not None:
        # Driven by the (organization, client, time, event) order of the index table.
        index = _SQLITE_CLIENT_INDEX.c
        t_col, id_col = index.occurred_at, index.audit_event_id
        query = query.join(_SQLITE_CLIENT_INDEX, index.audit_event_id == _E.id).where(
            index.organization_id == organization_id, index.client_id == str(filters.client_id)
        )
    query = query.where(_E.organization_id == organization_id)
    if filters.actor_user_id is not None:
        query = query.where(_E.actor_user_id == filters.actor_user_id)
    if filters.entity_type is not None:
        query = query.where(_E.entity_type == filters.entity_type)
    if filters.entity_id is not None:
        query = query.where(_E.entity_id == filters.entity_id)
    if filters.action is not None:
        query = query.where(_E.action == filters.action)
    if filters.since is not None:
        query = query.where(t_col >= filters.since)
    if filters.until is not None:
        query = query.where(t_col < filters.until)
    if position is not None:
        query = query.where(tuple_(t_col, id_col) < tuple_(*position))
    query = query.order_by(t_col.desc(), id_col.desc()).limit(filters.limit + 1)
    return (await conn.execute(query)).all()
