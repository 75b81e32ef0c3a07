"""Reading the audit log: admins only, one organization, newest first, keyset pagination."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.models import AuditEvent, AuditEventClient

_E = AuditEvent
_EC = AuditEventClient


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

    org = principal.organization_id
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
    if params.client_id is not None:
        # Driven by the (organization, client, time) index of the client rows.
        t_col, id_col = _EC.occurred_at, _EC.audit_event_id
        query = query.join(_EC, _EC.audit_event_id == _E.id).where(
            _EC.organization_id == org, _EC.client_id == params.client_id
        )
    else:
        t_col, id_col = _E.occurred_at, _E.id
    query = query.where(_E.organization_id == org)
    if params.actor_user_id is not None:
        query = query.where(_E.actor_user_id == params.actor_user_id)
    if params.entity_type is not None:
        query = query.where(_E.entity_type == params.entity_type)
    if params.entity_id is not None:
        query = query.where(_E.entity_id == params.entity_id)
    if params.action is not None:
        query = query.where(_E.action == params.action)
    if params.since is not None:
        query = query.where(t_col >= params.since)
    if params.until is not None:
        query = query.where(t_col < params.until)
    if position is not None:
        query = query.where(tuple_(t_col, id_col) < tuple_(*position))
    query = query.order_by(t_col.desc(), id_col.desc()).limit(params.limit + 1)

    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        clients: dict[int, list[str]] = defaultdict(list)
        if rows:
            client_rows = await conn.execute(
                select(_EC.audit_event_id, _EC.client_id)
                .where(_EC.audit_event_id.in_([r.id for r in rows]))
                .order_by(_EC.audit_event_id, _EC.client_id)
            )
            for event_id, client_id in client_rows:
                clients[event_id].append(str(client_id))

    return {
        "success": True,
        "data": {
            "events": [
                {
                    "id": r.id,
                    "occurred_at": iso_utc(r.occurred_at),
                    "actor_user_id": str(r.actor_user_id) if r.actor_user_id else None,
                    "action": r.action,
                    "entity_type": r.entity_type,
                    "entity_id": r.entity_id,
                    "request_id": r.request_id,
                    "client_ids": clients.get(r.id, []),
                    "details": r.details or {},
                }
                for r in rows
            ],
            "pagination": {
                "limit": params.limit,
                "has_more": more,
                "next_cursor": (
                    encode_cursor("audit_events", rows[-1].occurred_at, rows[-1].id)
                    if more
                    else None
                ),
            },
        },
        "filters": {
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
    }
