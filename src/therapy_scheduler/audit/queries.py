"""SQL of the audit log's read side (SQLAlchemy Core): a keyset page of one organization's events,
then the clients of those events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.models import AuditEvent, AuditEventClient

_E = AuditEvent
_EC = AuditEventClient

# id, occurred_at, actor_user_id, action, entity_type, entity_id, request_id, details
EventRow: TypeAlias = Row[
    int, datetime, uuid.UUID | None, str, str, str, str | None, dict[str, Any]
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
    )
    if filters.client_id is not None:
        # Driven by the (organization, client, time) index of the client rows.
        t_col, id_col = _EC.occurred_at, _EC.audit_event_id
        query = query.join(_EC, _EC.audit_event_id == _E.id).where(
            _EC.organization_id == organization_id, _EC.client_id == filters.client_id
        )
    else:
        t_col, id_col = _E.occurred_at, _E.id
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


async def event_clients(conn: AsyncConnection, event_ids: list[int]) -> dict[int, list[str]]:
    """The client ids (canonical text, in id order) of each of these events that has any."""
    clients: dict[int, list[str]] = defaultdict(list)
    if not event_ids:
        return clients
    rows = await conn.execute(
        select(_EC.audit_event_id, _EC.client_id)
        .where(_EC.audit_event_id.in_(event_ids))
        .order_by(_EC.audit_event_id, _EC.client_id)
    )
    for event_id, client_id in rows:
        clients[event_id].append(str(client_id))
    return clients
