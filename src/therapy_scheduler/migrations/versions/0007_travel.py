"""Travel between places: optional coordinates on locations and the organization's travel-time matrix.

`locations.latitude` / `locations.longitude` are both set or both NULL, within [-90, 90] and
[-180, 180]. `location_travel` holds the minutes an admin set for a pair of locations; a pair is stored
once, its two ids in ascending order (travel is symmetric: docs/DECISIONS.md).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch_op.create_check_constraint(
            "coordinates",
            "(latitude IS NULL AND longitude IS NULL) OR (latitude IS NOT NULL AND longitude IS "
            "NOT NULL AND latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180)",
        )
    op.create_table(
        "location_travel",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("from_location_id", sa.Uuid(), nullable=False),
        sa.Column("to_location_id", sa.Uuid(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "minutes >= 0 AND minutes <= 240", name=op.f("ck_location_travel_minutes")
        ),
        sa.CheckConstraint(
            "from_location_id < to_location_id", name=op.f("ck_location_travel_ordered_pair")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_location_travel_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_location_id"],
            ["locations.id"],
            name=op.f("fk_location_travel_from_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_location_id"],
            ["locations.id"],
            name=op.f("fk_location_travel_to_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "from_location_id", "to_location_id", name=op.f("pk_location_travel")
        ),
    )
    with op.batch_alter_table("location_travel", schema=None) as batch_op:
        batch_op.create_index("ix_location_travel_org", ["organization_id"], unique=False)
        batch_op.create_index("ix_location_travel_to", ["to_location_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("location_travel", schema=None) as batch_op:
        batch_op.drop_index("ix_location_travel_to")
        batch_op.drop_index("ix_location_travel_org")
    op.drop_table("location_travel")
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.drop_constraint("coordinates", type_="check")
        batch_op.drop_column("longitude")
        batch_op.drop_column("latitude")
