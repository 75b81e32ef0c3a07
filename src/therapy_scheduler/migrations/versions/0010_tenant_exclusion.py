"""The no-double-booking exclusion constraints include organization_id (PostgreSQL), the
supervision overlap of 0006 included.

A sharded deployment by organization (Citus, docs/DEPLOYMENT.md, "Sharding by organization") can
only enforce an exclusion constraint on a distributed table when the distribution column is part of
it with `=`. A therapist and a client belong to one organization, so the constraints forbid exactly
what they forbade before. The constraints keep their names (booking/rules/constraints.py maps them
to their 409s). SQLite has no exclusion constraints: nothing to do there.

Each constraint is rebuilt (its GiST index too), holding a lock on its table for the time of the
build: run it in a quiet hour on a large database.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {"sessions": "status <> 'cancelled'", "hold_occurrences": "active"}
_RANGE = "tstzrange(start_time, end_time, '[)')"
# name suffix → what follows the person's id in the constraint (the definitions of 0001 and, for the
# client, of 0006: the supervision overlap)
_CONSTRAINTS = {
    "therapist_overlap": ("therapist_id", f"{_RANGE} WITH &&"),
    "client_overlap": ("client_id", f"{_RANGE} WITH &&, (coalesce(supervises, '')) WITH ="),
    "client_supervision": (
        "client_id",
        f"{_RANGE} WITH &&, (supervises IS NULL) WITH <>, "
        "(coalesce(supervises, service_code)) WITH <>",
    ),
}


def _rebuild(with_organization: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    tenant = "organization_id WITH =, " if with_organization else ""
    for table, live in _TABLES.items():
        for suffix, (person, rest) in _CONSTRAINTS.items():
            name = f"ex_{table}_{suffix}"
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist ({tenant}"
                f"{person} WITH =, {rest}) WHERE ({live})"
            )


def upgrade() -> None:
    _rebuild(with_organization=True)


def downgrade() -> None:
    _rebuild(with_organization=False)
