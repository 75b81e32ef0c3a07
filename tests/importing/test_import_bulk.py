"""Large imports (PostgreSQL: the COPY path) keep the import rules: upsert by id, no overlaps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fixtures import A1, C1, L1, T1, Clinic
from therapy_scheduler.importing.bulk_copy import COPY_THRESHOLD
from therapy_scheduler.importing.service import ImportFailed, import_document, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Session

COUNT = COPY_THRESHOLD + 7
FIRST = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)


def _sessions(status: str = "completed") -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.UUID(int=0xC0FFEE0000 + n)),
            "therapist_id": T1,
            "client_id": C1,
            "start_time": (FIRST + timedelta(hours=2 * n)).isoformat(),
            "end_time": (FIRST + timedelta(hours=2 * n, minutes=60)).isoformat(),
            "status": status,
            "location_id": L1,
            "location_type": "clinic",
            "service_code": "97153",
            "authorization_id": A1,
            "notes": f"note {n}",
        }
        for n in range(COUNT)
    ]


async def _import(db: Database, sessions: list[dict[str, Any]]) -> dict[str, int]:
    async with db.write() as conn:
        return await import_document(conn, parse_document({"sessions": sessions}))


async def _status_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(Session.status, func.count(), func.sum(Session.units))
            .where(Session.start_time >= FIRST)
            .group_by(Session.status)
        )
        return {f"{r[0]}:{r[2]}": r[1] for r in rows}


async def test_large_import_inserts_then_upserts(db: Database, clinic: Clinic) -> None:
    assert (await _import(db, _sessions()))["sessions"] == COUNT
    assert await _status_counts(db) == {f"completed:{4 * COUNT}": COUNT}

    await _import(db, _sessions("cancelled"))

    assert await _status_counts(db) == {f"cancelled:{4 * COUNT}": COUNT}
    async with db.read() as conn:
        notes = (
            await conn.execute(
                select(Session.notes).where(Session.id == uuid.UUID(int=0xC0FFEE0000 + 9))
            )
        ).scalar_one()
    assert notes == "note 9"


async def test_large_import_with_an_overlap_imports_nothing(db: Database, clinic: Clinic) -> None:
    sessions = _sessions()
    sessions[-1]["start_time"] = sessions[3]["start_time"]
    sessions[-1]["end_time"] = sessions[3]["end_time"]

    with pytest.raises(ImportFailed) as failure:
        await _import(db, sessions)

    assert failure.value.message == (
        f"sessions[3]: overlaps sessions[{COUNT - 1}] of the same therapist"
    )
    assert await _status_counts(db) == {}
