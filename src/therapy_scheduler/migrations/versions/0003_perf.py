"""Read-path indexes: authorization unit balances answered from the index alone.

`unit_balances` and the conflict check sum `units` of the consuming sessions of a few authorizations on
every schedule read. With (authorization_id, service_code, consumes_units, units) PostgreSQL answers
that from an index-only scan instead of visiting every session row of those authorizations.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sessions_authorization_units",
            ["authorization_id", "service_code", "consumes_units", "units"],
            unique=False,
        )
        batch_op.drop_index("ix_sessions_authorization")


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sessions_authorization", ["authorization_id", "service_code"], unique=False
        )
        batch_op.drop_index("ix_sessions_authorization_units")
