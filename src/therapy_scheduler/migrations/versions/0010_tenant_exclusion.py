"""The no-double-booking exclusion constraints include organization_id (PostgreSQL).

A sharded deployment by organization (Citus, docs/DEPLOYMENT.md, "Sharding by organization") can
only enforce an exclusion constraint on a distributed table when the distribution column is part of
it with `=`. A therapist and a client belong to one organization, so the constraints forbid exactly
what they forbade before. The constraints keep their names (booking/rules/constraints.py maps them
to their 409s). SQLite has no exclusion constraints: nothing to do there.

Each constraint is rebuilt (its GiST index too), holding a lock on its table for the time of the
build: run it in a quiet hour on a large database.

Revision ID: 0010
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {"sessions": "status <> 'cancelled'", "hold_occurrences": "active"}


def _rebuild(with_organization: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    tenant = "organization_id WITH =, " if with_organization else ""
    for table, live in _TABLES.items():
        for who in ("therapist", "client"):
            name = f"ex_{table}_{who}_overlap"
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist ({tenant}"
                f"{who}_id WITH =, tstzrange(start_time, end_time, '[)') WITH &&) WHERE ({live})"
            )


def upgrade() -> None:
    _rebuild(with_organization=True)


def downgrade() -> None:
    _rebuild(with_organization=False)
