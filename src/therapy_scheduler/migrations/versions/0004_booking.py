"""booking: hold close time, occurrence → session link, hold status check

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import therapy_scheduler.models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "closed_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_check_constraint(
            "status", "status IN ('active', 'confirmed', 'released', 'expired')"
        )
    with op.batch_alter_table("hold_occurrences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch_op.create_check_constraint("order", "start_time < end_time")
        batch_op.create_check_constraint("units", "units >= 0")


def downgrade() -> None:
    with op.batch_alter_table("hold_occurrences", schema=None) as batch_op:
        batch_op.drop_constraint("ck_hold_occurrences_units", type_="check")
        batch_op.drop_constraint("ck_hold_occurrences_order", type_="check")
        batch_op.drop_column("session_id")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_constraint("ck_holds_status", type_="check")
        batch_op.drop_column("closed_at")
