"""Audit events, written in the same transaction as the change they describe.

Payloads carry ids, codes and counts only: never names, notes, contact data or tokens. The audit tables
are append-only (database triggers reject UPDATE and DELETE), so nothing here ever changes a row.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Uuid, column, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra import changes, last_statement
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuditEvent, AuditEventClient


@dataclass(frozen=True)
class AuditEntry:
    """One event to append; `client_ids` are the clients it concerns (indexed for the client filter):
    UUIDs, or their canonical text (lower-case, dashed; the PHI read log keeps the text the
    database rendered, `audit/phi.py`)."""

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
    clients = list(dict.fromkeys(client_ids))
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
    if clients:
        await append_entries(conn, [entry])  # its client index rows need its id now
    else:
        await last_statement.insert_later(conn, AuditEvent, _row(entry))


async def append_entries(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Insert events (and their client index rows) with two statements whatever their number."""
    if not entries:
        return
    rows = [_row(e) for e in entries]
    if not any(e.client_ids for e in entries):
        await conn.execute(insert(AuditEvent), rows)
        return
    ids = await _reserve_ids(conn, len(rows))
    for row, event_id in zip(rows, ids, strict=True):
        row["id"] = event_id
    await conn.execute(insert(AuditEvent), rows)
    await _insert_client_rows(conn, ids, entries)


async def _insert_client_rows(
    conn: AsyncConnection, ids: Sequence[int], entries: Sequence[AuditEntry]
) -> None:
    """The events' client index rows, with no per-row work in SQLAlchemy: a page of sessions shows
    about two dozen clients, so the PHI read log of a busy minute is tens of thousands of these
    rows, and an executemany through SQLAlchemy costs a round of parameter processing per row.
    PostgreSQL gets one statement over a JSON document of the events, each with its clients
    (`jsonb_array_elements`: one execution, where asyncpg's executemany makes one per row; the
    event's id, organization and time written once, not once per client); SQLite gets the driver's
    executemany (`exec_driver_sql`: sqlite3 binds and steps each row in C). Values are converted
    by the columns' own bind processors, so they are stored exactly as an INSERT through
    SQLAlchemy stores them."""
    dialect = conn.dialect

    def processor(column: Any) -> Any:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process or (lambda value: value)

    as_uuid = processor(_CLIENT_COLUMNS.client_id)
    # Canonical text is stored as its UUID is: the same type's bind processor for text.
    as_text = processor(_CLIENT_ID_TEXT)

    def client(value: uuid.UUID | str) -> Any:
        return as_text(value) if isinstance(value, str) else as_uuid(value)

    organization = processor(_CLIENT_COLUMNS.organization_id)
    occurred = processor(_CLIENT_COLUMNS.occurred_at)
    events = [
        (event_id, organization(e.organization_id), occurred(e.occurred_at), clients)
        for event_id, e in zip(ids, entries, strict=True)
        for clients in [[client(c) for c in dict.fromkeys(e.client_ids)]]
        if clients
    ]
    if not events:
        return
    if dialect.name == "postgresql":
        # `default=str`: asyncpg's own UUID type (ids read from the database) as canonical text.
        document = orjson.dumps(events, default=str).decode()
        await conn.execute(_CLIENT_ROWS_FROM_JSON, {"events": document})
    else:
        # SQLite inserts them one by one: in the client index's order (organization, client, time,
        # event), each key lands next to the one before it, which halves the rows' cost against the
        # events' order, where the clients of each event scatter over the index (docs/DECISIONS.md,
        # "The hot read path"). Only the order of insertion changes, not the rows.
        rows = [(event_id, c, org, at) for event_id, org, at, clients in events for c in clients]
        rows.sort(key=_CLIENT_INDEX_ORDER)
        await conn.exec_driver_sql(_CLIENT_ROWS_SQLITE, rows)


# A row is (event, client, organization, time); the client index is (organization, client, time, event).
_CLIENT_INDEX_ORDER = operator.itemgetter(2, 1, 3, 0)


_CLIENT_COLUMNS = AuditEventClient.__table__.c
_CLIENT_ID_TEXT = column("client_id", Uuid(as_uuid=False))
# Each event is [id, organization, time, [client, ...]].
_CLIENT_ROWS_FROM_JSON = text(
    "INSERT INTO audit_event_clients (audit_event_id, client_id, organization_id, occurred_at) "
    "SELECT (e->>0)::bigint, c.id::uuid, (e->>1)::uuid, (e->>2)::timestamptz "
    "FROM jsonb_array_elements(CAST(:events AS jsonb)) AS e "
    "CROSS JOIN LATERAL jsonb_array_elements_text(e->3) AS c(id)"
)
_CLIENT_ROWS_SQLITE = (
    "INSERT INTO audit_event_clients (audit_event_id, client_id, organization_id, occurred_at) "
    "VALUES (?, ?, ?, ?)"
)


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
    }


async def _reserve_ids(conn: AsyncConnection, count: int) -> list[int]:
    """Ids for `count` new events, so that their client rows can be inserted in one statement.

    (INSERT ... RETURNING in parameter order falls back to one row per statement on SQLite.)
    """
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return sorted(int(r[0]) for r in result)
    # SQLite: a write transaction starts with BEGIN IMMEDIATE and so holds the database's write
    # lock; no other connection can take these ids before this transaction ends.
    top = (await conn.execute(select(func.max(AuditEvent.id)))).scalar() or 0
    return list(range(top + 1, top + 1 + count))


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
