"""Recording reads of PHI: which clients' sessions a caller was shown.

One `phi.read` event per response that showed at least one session, holding the endpoint, counts and
the distinct client ids (ids only, no names). It goes through the in-process AuditWriter, so the read
path does no extra database work (see infra/audit_writer.py for the durability trade-off).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from fastapi import Request

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.infra.audit_log import AuditEntry
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.kit.time import utcnow

PHI_READ = "phi.read"
# Canonical UUID texts, each followed by a newline: the distinct ids of a response, checked in one
# match of their joined text instead of one match per id (docs/DECISIONS.md, "The hot read path").
_CANONICAL_LINES = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n)*"
)


def client_ids_shown(items: Iterable[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Distinct client ids, in first-seen order, of serialized sessions or conflicts."""
    seen: dict[uuid.UUID, None] = {}
    for item in items:
        raw = item.get("client_id")
        if raw:
            seen.setdefault(uuid.UUID(str(raw)), None)
    return list(seen)


def note_phi_read(
    request: Request,
    principal: Principal | None,
    *,
    endpoint: str,
    sessions: list[Mapping[str, Any]],
    extra: Iterable[Mapping[str, Any]] = (),
    organization_id: uuid.UUID | None = None,
    entity_type: str = "sessions",
    entity_id: str | None = None,
) -> None:
    """Queue a `phi.read` event for what this response showed; nothing when it showed no session."""
    if not sessions:
        return
    note_phi_read_of(
        request,
        principal,
        endpoint=endpoint,
        session_count=len(sessions),
        client_ids=client_ids_shown([*sessions, *extra]),
        organization_id=organization_id,
        entity_type=entity_type,
        entity_id=entity_id,
    )


def note_phi_read_of(
    request: Request,
    principal: Principal | None,
    *,
    endpoint: str,
    session_count: int,
    client_ids: Iterable[uuid.UUID | str],
    organization_id: uuid.UUID | None = None,
    entity_type: str = "sessions",
    entity_id: str | None = None,
) -> None:
    """`note_phi_read` for a response whose sessions were rendered by the database: the caller
    passes their count and the client ids shown (in order; repeats are dropped here)."""
    if not session_count:
        return
    writer: AuditWriter = request.app.state.audit_writer
    distinct = dict.fromkeys(map(str, client_ids))  # a page shows few clients many times
    # Kept as canonical text, as the database renders them: parsing two dozen ids into UUID objects
    # was half of the read log's cost in the request (docs/PERFORMANCE.md). Any other spelling is
    # parsed (a bad id raises, as before) and written canonically.
    if _all_canonical(distinct):
        clients = list(distinct)
    else:
        clients = list(dict.fromkeys(str(uuid.UUID(c)) for c in distinct))
    org = organization_id or (principal.organization_id if principal else None)
    if org is None:
        return
    writer.add(
        AuditEntry(
            organization_id=org,
            actor_user_id=principal.user_id if principal else None,
            action=PHI_READ,
            entity_type=entity_type,
            entity_id=entity_id or endpoint,
            request_id=getattr(request.state, "request_id", None),
            occurred_at=utcnow(),
            details={
                "endpoint": endpoint,
                "session_count": session_count,
                "client_count": len(clients),
            },
            client_ids=tuple(clients),
        )
    )


def _all_canonical(ids: Collection[str]) -> bool:
    """Whether every one of `ids` is a UUID in canonical text (lower-case hex, dashed). The text of
    each id and a newline matches only as lines of 36 characters in that form; its length, 37 per
    id, rules out an id that holds a newline of its own (two lines for one id)."""
    text = "\n".join([*ids, ""])
    return len(text) == 37 * len(ids) and _CANONICAL_LINES.fullmatch(text) is not None
