"""Migration 0017 moves the audit log's client rows into their events' `client_ids`, and its
downgrade writes them back: nothing of the log is lost either way, on either database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from tests.conftest import BACKENDS, PG_ADMIN_URL, _worker, pg_admin
from tests.fixtures import C1, C2, C3, CB, ORG_A, ORG_B
from therapy_scheduler.audit.queries import event_page
from therapy_scheduler.audit.schemas import AuditEventsParams
from therapy_scheduler.config import normalize_database_url
from therapy_scheduler.migrations import downgrade, upgrade
from therapy_scheduler.models.base import UTCDateTime

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# (event id, organization, clients) as written at revision 0016.
EVENTS = [(1, ORG_A, (C2, C1)), (2, ORG_A, ()), (3, ORG_B, (CB,)), (4, ORG_A, (C3,))]


@pytest.fixture(params=[b for b in BACKENDS if b in ("sqlite", "postgresql")])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, with no schema."""
    if request.param == "sqlite":
        yield normalize_database_url(f"sqlite:///{tmp_path / 'migrated.db'}")
        return
    request.getfixturevalue("pg_template_url")  # PostgreSQL is there (or the test fails in CI)
    name = f"ts_migration_{_worker()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield normalize_database_url(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _statement(sql: str, **types: TypeEngine[Any]) -> TextClause:
    """A statement of revision 0016's schema whose parameters are bound as these column types."""
    return text(sql).bindparams(*(bindparam(name, type_=kind) for name, kind in types.items()))


_ORGANIZATION = _statement(
    "INSERT INTO organizations (id, name, time_zone, settings, created_at) "
    "VALUES (:id, 'Org', 'UTC', :settings, :at)",
    id=Uuid(),
    settings=JSON(),
    at=UTCDateTime(),
)
_EVENT = _statement(
    "INSERT INTO audit_events (id, organization_id, action, entity_type, entity_id, occurred_at, "
    "details) VALUES (:id, :org, 'phi.read', 'sessions', 'x', :at, :details)",
    org=Uuid(),
    at=UTCDateTime(),
    details=JSON(),
)
_CLIENT_ROW = _statement(
    "INSERT INTO audit_event_clients (audit_event_id, client_id, organization_id, occurred_at) "
    "VALUES (:id, :client, :org, :at)",
    client=Uuid(),
    org=Uuid(),
    at=UTCDateTime(),
)


def _at(event_id: int) -> datetime:
    return AT + timedelta(minutes=event_id)


async def _client_rows(url: str) -> list[tuple[int, uuid.UUID, uuid.UUID, datetime]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT audit_event_id, client_id, organization_id, occurred_at "
                    "FROM audit_event_clients"
                )
            )
            return sorted(
                (int(e), uuid.UUID(str(c)), uuid.UUID(str(o)), _as_utc(at)) for e, c, o, at in rows
            )
    finally:
        await engine.dispose()


def _as_utc(value: datetime | str) -> datetime:
    """An instant as either database returns it from a textual SELECT (SQLite: its stored text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _expected_rows() -> list[tuple[int, uuid.UUID, uuid.UUID, datetime]]:
    return sorted(
        (event_id, uuid.UUID(client), uuid.UUID(org), _at(event_id))
        for event_id, org, clients in EVENTS
        for client in clients
    )


async def _client_ids_and_filter(url: str) -> tuple[list[list[str]], list[int]]:
    """Each event's `client_ids` (sorted, by event id), and the events of C1 that the audit log's
    client filter finds for organization A."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT client_ids FROM audit_events ORDER BY id"))
            ).scalars()
            client_ids = [sorted(_ids(value)) for value in stored]
            found = await event_page(
                conn, uuid.UUID(ORG_A), AuditEventsParams(client_id=uuid.UUID(C1)), None
            )
        return client_ids, [row.id for row in found]
    finally:
        await engine.dispose()


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):  # SQLite's JSON text
        return [str(uuid.UUID(v)) for v in json.loads(value)]
    return [str(v) for v in value]


async def test_client_rows_move_into_their_events_and_back(blank_url: str) -> None:
    upgrade(blank_url, "0016")
    engine = create_async_engine(blank_url)
    try:
        async with engine.begin() as conn:
            for org in (ORG_A, ORG_B):
                await conn.execute(_ORGANIZATION, {"id": uuid.UUID(org), "settings": {}, "at": AT})
            for event_id, org, clients in EVENTS:
                values = {"id": event_id, "org": uuid.UUID(org), "at": _at(event_id)}
                await conn.execute(_EVENT, {**values, "details": {}})
                for client in clients:
                    await conn.execute(_CLIENT_ROW, {**values, "client": uuid.UUID(client)})
    finally:
        await engine.dispose()
    before = await _client_rows(blank_url)
    assert before == _expected_rows()

    upgrade(blank_url, "0017")
    expected_ids = [sorted(clients) for _, _, clients in EVENTS]
    assert await _client_ids_and_filter(blank_url) == (expected_ids, [1])

    downgrade(blank_url, "0016")
    assert await _client_rows(blank_url) == before

    upgrade(blank_url, "0017")
    assert await _client_ids_and_filter(blank_url) == (expected_ids, [1])
