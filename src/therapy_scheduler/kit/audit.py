"""Audit events, written in the same transaction as the change they describe.

Payloads carry ids, codes and counts only: never names, notes, contact data or tokens.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuditEvent


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
) -> None:
    """Append one audit event (e.g. action="session.cancel", entity_type="session")."""
    await conn.execute(
        insert(AuditEvent).values(
            organization_id=organization_id,
            actor_user_id=actor_user_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            request_id=request_id,
            occurred_at=utcnow(),
            details=details or {},
        )
    )
