"""Rows kept back to the end of a write transaction (`last_statement.insert_later`): on PostgreSQL they go in
with the change counter's bump, as one statement (docs/DECISIONS.md, "Conditional requests"); on
SQLite at once. Either way they commit with the change and roll back with it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.fixtures import ORG_A as _ORG_A
from tests.fixtures import ORG_B as _ORG_B
from tests.fixtures import Clinic
from therapy_scheduler.infra import changes, last_statement, outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuditEvent, IdempotencyRecord, WebhookEvent

ORG_A, ORG_B = uuid.UUID(_ORG_A), uuid.UUID(_ORG_B)


async def _counts(db: Database) -> tuple[int, int, int, int]:
    async with db.read() as conn:
        events = (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar_one()
        audit = (
            await conn.execute(select(func.count()).where(AuditEvent.action == "test.kept_back"))
        ).scalar_one()
        a = await changes.current_version(conn, ORG_A)
        b = await changes.current_version(conn, ORG_B)
    return int(events), int(audit), a, b


async def _write(conn: AsyncConnection, organization_id: uuid.UUID, events: int) -> None:
    for _ in range(events):
        await outbox.emit(
            conn,
            organization_id=organization_id,
            event_type="session.updated",
            subject_id=uuid.uuid4(),
            ids={"session_id": uuid.uuid4()},
        )
    await last_statement.insert_later(
        conn,
        AuditEvent,
        {
            "organization_id": organization_id,
            "actor_user_id": None,
            "action": "test.kept_back",
            "entity_type": "session",
            "entity_id": "x",
            "request_id": None,
            "occurred_at": utcnow(),
            "details": {"n": events},
        },
    )
    changes.touch(conn, organization_id)


@pytest.mark.parametrize("events", [1, 3, 120])
async def test_kept_back_rows_commit_with_the_change_of_two_organizations(
    db: Database, clinic: Clinic, events: int
) -> None:
    before = await _counts(db)
    async with db.write() as conn:
        await _write(conn, ORG_A, events)
        await _write(conn, ORG_B, 1)
    events_now, audit_now, a, b = await _counts(db)
    assert events_now == before[0] + events + 1
    assert audit_now == before[1] + 2
    assert a == before[2] + 1
    assert b == before[3] + 1


async def test_kept_back_rows_roll_back_with_the_change(db: Database, clinic: Clinic) -> None:
    before = await _counts(db)

    async def refused() -> None:
        async with db.write() as conn:
            await _write(conn, ORG_A, 3)
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await refused()
    assert await _counts(db) == before
    # Nothing kept back leaks into the next transaction on the same pooled connection.
    async with db.write() as conn:
        changes.touch(conn, ORG_A)
    events_now, audit_now, a, _ = await _counts(db)
    assert (events_now, audit_now) == before[:2]
    assert a == before[2] + 1


_AUDITED = (
    "SELECT count(*) AS audited FROM audit_events "
    "WHERE action = 'test.kept_back' AND organization_id = :{q}org"
)


_ORG = {"org": (ORG_A, AuditEvent.organization_id.type)}


async def test_a_last_check_reads_what_committed_and_its_refusal_rolls_back(
    db: Database, clinic: Clinic
) -> None:
    """`last_statement.check_last`: the query is read by the last statement and its row reaches the check;
    an exception from the check rolls back the change and the rows kept back with it. On
    PostgreSQL that statement is the bump's, which also inserts the kept-back rows: like any part
    of one statement, the query does not see them; on SQLite they were inserted at once."""
    before = await _counts(db)
    seen: list[tuple[object, ...]] = []
    async with db.write() as conn:
        await _write(conn, ORG_A, 1)
        await last_statement.check_last(
            conn,
            _AUDITED,
            ("audited",),
            _ORG,
            seen.append,
        )
    assert seen == [(before[1],)] if db.dialect == "postgresql" else [(before[1] + 1,)]
    after = await _counts(db)

    def refuse(row: tuple[object, ...]) -> None:
        raise RuntimeError(f"refused at {row[0]}")

    async def refused() -> None:
        async with db.write() as conn:
            await _write(conn, ORG_A, 2)
            await last_statement.check_last(
                conn,
                _AUDITED,
                ("audited",),
                _ORG,
                refuse,
            )

    with pytest.raises(RuntimeError, match="refused"):
        await refused()
    assert await _counts(db) == after
    # Nothing of the refused transaction's checks reaches the next one on the pooled connection.
    async with db.write() as conn:
        await _write(conn, ORG_A, 1)
    assert (await _counts(db))[1] == after[1] + 1


async def test_a_later_update_commits_with_the_change_and_rolls_back_with_it(
    db: Database, clinic: Clinic
) -> None:
    """`last_statement.update_later` (an Idempotency-Key's stored response): on PostgreSQL set by the
    bump's statement, on SQLite at once; either way only if the change commits."""
    record_id, now = uuid.uuid4(), utcnow()
    async with db.write() as conn:
        await conn.execute(
            insert(IdempotencyRecord).values(
                id=record_id,
                organization_id=ORG_A,
                user_id=uuid.uuid4(),
                endpoint="test",
                key="k",
                request_hash="h",
                state="in_progress",
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )

    async def state() -> tuple[str, int | None, bytes | None]:
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        IdempotencyRecord.state,
                        IdempotencyRecord.response_status,
                        IdempotencyRecord.response_body,
                    ).where(IdempotencyRecord.id == record_id)
                )
            ).one()
        return row[0], row[1], row[2]

    async def refused() -> None:
        async with db.write() as conn:
            await _write(conn, ORG_A, 1)
            values = {"state": "completed", "response_status": 409, "response_body": b"{}"}
            await last_statement.update_later(
                conn, IdempotencyRecord, values, where={"id": record_id}
            )
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await refused()
    assert await state() == ("in_progress", None, None)
    before = await _counts(db)
    async with db.write() as conn:
        await _write(conn, ORG_A, 1)
        values = {"state": "completed", "response_status": 200, "response_body": b'{"ok":1}'}
        await last_statement.update_later(conn, IdempotencyRecord, values, where={"id": record_id})
    assert await state() == ("completed", 200, b'{"ok":1}')
    events, audit, a, _ = await _counts(db)
    assert (events, audit, a) == (before[0] + 1, before[1] + 1, before[2] + 1)


# Conditions on the row's own values (`:{row}<column>`), as the freed-slot row's.
_KNOWN = "EXISTS (SELECT 1 FROM organizations WHERE id = :{row}organization_id)"
_UNKNOWN = "NOT EXISTS (SELECT 1 FROM organizations WHERE id = :{row}organization_id)"


def _audit_row(organization_id: uuid.UUID, n: int) -> dict[str, Any]:
    return {
        "organization_id": organization_id,
        "actor_user_id": None,
        "action": "test.kept_back.if",
        "entity_type": "session",
        "entity_id": str(n),
        "request_id": None,
        "occurred_at": utcnow(),
        "details": {"n": n},
    }


async def test_rows_kept_back_under_a_condition_are_written_only_when_it_holds(
    db: Database, clinic: Clinic
) -> None:
    """On PostgreSQL the transaction's last statement only evaluates the condition (once for rows
    naming the same values) and the rows whose condition held go in after it; on SQLite each row's
    INSERT checks it. Either way: the handles tell, and only those rows commit."""
    before = await _counts(db)
    async with db.write() as conn:
        await _write(conn, ORG_A, 1)  # a row without a condition beside them
        held = [
            await last_statement.insert_later(
                conn, AuditEvent, _audit_row(ORG_A, n), only_if=_KNOWN
            )
            for n in range(3)
        ]
        not_held = [
            await last_statement.insert_later(
                conn, AuditEvent, _audit_row(ORG_A, n), only_if=_UNKNOWN
            )
            for n in range(3, 5)
        ]
        stranger = uuid.uuid4()  # no such organization: the same condition, other values
        other = await last_statement.insert_later(
            conn, AuditEvent, _audit_row(stranger, 5), only_if=_KNOWN
        )
    assert [h.written for h in held] == [True, True, True]
    assert [h.written for h in not_held] == [False, False]
    assert other.written is False
    async with db.read() as conn:
        written = (
            await conn.execute(
                select(AuditEvent.entity_id).where(AuditEvent.action == "test.kept_back.if")
            )
        ).scalars()
        assert sorted(written) == ["0", "1", "2"]
    events_now, audit_now, a, _ = await _counts(db)
    assert (events_now, audit_now, a) == (before[0] + 1, before[1] + 1, before[2] + 1)


async def test_a_row_under_a_condition_adds_no_statement_while_it_goes_as_last_time(
    db: Database, clinic: Clinic
) -> None:
    """On PostgreSQL a row under a condition costs the transaction no statement of its own while the
    condition answers as it did last time in this process: not holding (a freed slot while nobody
    waits), a column of the last statement; holding, its INSERT rides on that statement. SQLite
    checks with the row's own INSERT."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def write(only_if: str | None) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            async with db.write() as conn:
                await _write(conn, ORG_A, 1)
                if only_if is not None:
                    await last_statement.insert_later(
                        conn, AuditEvent, _audit_row(ORG_A, 9), only_if=only_if
                    )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    engine = db.writer.sync_engine
    without = await write(None)
    extra = 0 if db.writer.dialect.name == "postgresql" else 1
    for only_if in (_UNKNOWN, _KNOWN):
        await write(only_if)  # what this process remembers of the condition is now its answer
        assert await write(only_if) == without + extra


def _plain_audit_row(organization_id: uuid.UUID, action: str = "test.kept_back") -> dict[str, Any]:
    return {
        "organization_id": organization_id,
        "actor_user_id": None,
        "action": action,
        "entity_type": "session",
        "entity_id": "x",
        "request_id": None,
        "occurred_at": utcnow(),
        "details": {},
    }


@pytest.mark.parametrize("rows", [2, last_statement.FEW_ROWS + 5])
async def test_rows_of_one_kind_commit_kept_back_or_inserted_at_once(
    db: Database, clinic: Clinic, rows: int
) -> None:
    """`insert_rows_later`: a few rows ride on the bump, more go in at once (after what was kept
    before them); either way they commit with the change."""
    before = await _counts(db)
    async with db.write() as conn:
        await _write(conn, ORG_A, 1)
        await last_statement.insert_rows_later(
            conn, AuditEvent, [_plain_audit_row(ORG_A) for _ in range(rows)]
        )
    events_now, audit_now, a, _ = await _counts(db)
    assert (events_now, audit_now, a) == (before[0] + 1, before[1] + 1 + rows, before[2] + 1)


async def test_a_kept_back_row_is_inserted_before_it_is_read_back(
    db: Database, clinic: Clinic
) -> None:
    """`insert_kept_now`: the kept rows of one table go in at once, so that the transaction reads
    them; the others stay kept back and commit with the bump."""
    before = await _counts(db)
    async with db.write() as conn:
        await _write(conn, ORG_A, 2)
        await last_statement.insert_later(
            conn, AuditEvent, _plain_audit_row(ORG_A, "test.read_back")
        )
        await last_statement.insert_kept_now(conn, AuditEvent)
        seen = (
            await conn.execute(select(func.count()).where(AuditEvent.action == "test.read_back"))
        ).scalar_one()
    assert seen == 1
    events_now, audit_now, _, _ = await _counts(db)
    assert (events_now, audit_now) == (before[0] + 2, before[1] + 1)
