"""Reading the audit log: admins only, one organization, newest first, keyset pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from therapy_scheduler.audit import queries
from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc


async def audit_events(
    *, db: Database, writer: AuditWriter, principal: Principal, params: AuditEventsParams
) -> dict[str, Any]:
    """A page of the caller's organization's audit events matching every filter, newest first."""
    principal.require(Capability.READ_AUDIT_LOG, "Only admins may read the audit log")
    position = (
        decode_cursor("audit_events", params.cursor, (datetime, int)) if params.cursor else None
    )
    # Read events of this process are buffered for up to a second; show them too.
    await writer.flush()

    async with db.read() as conn:
        rows = await queries.event_page(conn, principal.organization_id, params, position)
        more = len(rows) > params.limit
        rows = rows[: params.limit]

    return ok(
        data={
            "events": [
                {
                    "id": r.id,
                    "occurred_at": iso_utc(r.occurred_at),
                    "actor_user_id": str(r.actor_user_id) if r.actor_user_id else None,
                    "action": r.action,
                    "entity_type": r.entity_type,
                    "entity_id": r.entity_id,
                    "request_id": r.request_id,
                    "client_ids": sorted(r.client_ids),
                    "details": r.details or {},
                }
                for r in rows
            ],
            "pagination": {
                "limit": params.limit,
                "has_more": more,
                "next_cursor": encode_cursor("audit_events", rows[-1].occurred_at, rows[-1].id)
                if more
                else None,
            },
        },
        filters={
            "actor_user_id": str(params.actor_user_id) if params.actor_user_id else None,
            "client_id": str(params.client_id) if params.client_id else None,
            "entity_type": params.entity_type,
            "entity_id": params.entity_id,
            "action": params.action,
            "since": iso_utc(params.since) if params.since else None,
            "until": iso_utc(params.until) if params.until else None,
            "limit": params.limit,
            "cursor": params.cursor,
        },
    )
