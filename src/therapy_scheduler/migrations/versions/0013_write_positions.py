"""Each user's last write position on the primary, for read-your-writes across API processes with a
read replica (docs/DECISIONS.md, "Scale-out: replica reads and PgBouncer"; models/write_position.py).

UNLOGGED on PostgreSQL: only the primary reads it, a write stores into it without a WAL flush of its
own, and a crash restart empties it (the missing floor row then makes every reader wait for the
replica to reach the primary's position of the moment). The floor row is inserted here at 0: nothing
was lost. On SQLite (no replicas) the table exists and stays empty but for that row.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLOOR_KEY = uuid.UUID(int=0)  # models/write_position.py FLOOR_KEY


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    table = op.create_table(
        "user_write_positions",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_user_write_positions")),
        prefixes=["UNLOGGED"] if postgresql else [],
    )
    op.bulk_insert(table, [{"organization_id": _FLOOR_KEY, "user_id": _FLOOR_KEY, "position": 0}])


def downgrade() -> None:
    op.drop_table("user_write_positions")
