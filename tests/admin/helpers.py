"""Small helpers of the admin API tests: read what the API wrote, straight from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent


async def audit_events(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                AuditEvent.organization_id,
                AuditEvent.actor_user_id,
                AuditEvent.action,
                AuditEvent.entity_type,
                AuditEvent.entity_id,
                AuditEvent.request_id,
                AuditEvent.details,
            ).order_by(AuditEvent.id)
        )
        return [
            {
                **r._mapping,
                "organization_id": str(r.organization_id),
                "actor_user_id": str(r.actor_user_id),
            }
            for r in rows
        ]


def fields(response_json: dict[str, Any]) -> list[str]:
    """The field names of a 400 VALIDATION_ERROR."""
    return [f["field"] for f in response_json["details"]["fields"]]
