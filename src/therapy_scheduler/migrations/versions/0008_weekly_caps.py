"""Weekly caps on an authorization's services: units or minutes per week (docs/ADMIN.md).

A payer limits a service per week in units ("8 units a week") or in hours ("10 hours a week"); the
hours are stored as whole minutes. At most one of the two, and each positive (CHECKs on both
databases). NULL: no weekly cap.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_services", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weekly_cap_units", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("weekly_cap_minutes", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            "weekly_cap",
            "(weekly_cap_units IS NULL OR weekly_cap_minutes IS NULL)"
            " AND (weekly_cap_units IS NULL OR weekly_cap_units > 0)"
            " AND (weekly_cap_minutes IS NULL OR weekly_cap_minutes > 0)",
        )


def downgrade() -> None:
    with op.batch_alter_table("authorization_services", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_authorization_services_weekly_cap"), type_="check")
        batch_op.drop_column("weekly_cap_minutes")
        batch_op.drop_column("weekly_cap_units")
