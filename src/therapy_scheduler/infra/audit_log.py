"""Audit events, written in the same transaction as the change they describe.

Payloads carry ids, codes and counts only: never names, notes, contact data or tokens. The audit tables
are append-only (database triggers reject UPDATE and DELETE), so nothing here ever changes a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra import changes, last_statement
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuditEvent


@dataclass(frozen=True)
class AuditEntry:
    """One event to append; `client_ids` are the clients it concerns, stored with the event and
    indexed for the client filter (`models/audit.py`): UUIDs, or their canonical text (lower-case,
    dashed; the PHI read log keeps the text the database rendered, `audit/phi.py`)."""

    organization_id: uuid.UUID
    actor_user_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str
    request_id: str | None
    occurred_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    client_ids: tuple[uuid.UUID | str, ...] = ()


async def record(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    request_id: str | None,
    details: dict[str, Any] | None = None,
    client_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Append one audit event (e.g. action="session.cancel", entity_type="session").

    Pass `client_ids` for the clients the change concerns (a session's client) so that the audit log
    can be filtered by client; an event about a client entity is indexed under that client anyway.
    """
    # An audited change is a change of the organization's data: its version is bumped at COMMIT
    # (`infra/changes.py`). Not in `append_entries`: the PHI read log goes through it, and a read
    # changes nothing.
    changes.touch(conn, organization_id)
    clients = list(client_ids)  # `_row` keeps each client once
    if entity_type == "client":
        own = _as_uuid(entity_id)
        if own is not None and own not in clients:
            clients.insert(0, own)
    entry = AuditEntry(
        organization_id=organization_id,
        actor_user_id=actor_user_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        request_id=request_id,
        occurred_at=utcnow(),
        details=details or {},
        client_ids=tuple(clients),
    )
    await last_statement.insert_later(conn, AuditEvent, _row(entry))


async def append_entries(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Insert events, their clients with them, in one statement whatever their number."""
    if entries:
        await conn.execute(insert(AuditEvent), [_row(e) for e in entries])


def _row(e: AuditEntry) -> dict[str, Any]:
    return {
        "organization_id": e.organization_id,
        "actor_user_id": e.actor_user_id,
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "request_id": e.request_id,
        "occurred_at": e.occurred_at,
        "details": e.details,
        # Canonical text on both databases (the column's type, `models/audit.py`).
        "client_ids": list(dict.fromkeys(str(c) for c in e.client_ids)),
    }


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
