"""What a sharded deployment by organization needs from the schema (docs/DEPLOYMENT.md, "Sharding by
organization"): organization_id on every tenant table, and in each no-double-booking exclusion
constraint (migration 0010)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from therapy_scheduler.infra.db import Database
from therapy_scheduler.models.base import Base

# Tables shared by every organization (Citus reference tables): only the organizations themselves.
REFERENCE_TABLES = {"organizations"}


def test_every_tenant_table_has_organization_id() -> None:
    lacking = [
        table.name
        for table in Base.metadata.sorted_tables
        if table.name not in REFERENCE_TABLES and "organization_id" not in table.c
    ]
    assert lacking == []


async def test_the_exclusion_constraints_include_the_organization(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("exclusion constraints exist on PostgreSQL only")
    async with db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE contype = 'x' ORDER BY conname"
                )
            )
        ).all()
    assert [name for name, _ in rows] == [
        "ex_hold_occurrences_client_overlap",
        "ex_hold_occurrences_client_supervision",
        "ex_hold_occurrences_therapist_overlap",
        "ex_sessions_client_overlap",
        "ex_sessions_client_supervision",
        "ex_sessions_therapist_overlap",
    ]
    for name, definition in rows:
        assert "organization_id WITH =" in definition, (name, definition)
