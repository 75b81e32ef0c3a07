"""The waitlist (docs/WAITLIST.md): entries, offers (at most one open offer per entry: a partial
unique index on both databases) and the freed-slot outbox that the matcher processes after commit.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import therapy_scheduler.models.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "freed_slots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column(
            "start_time", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "end_time", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "processed_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_freed_slots_order")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_freed_slots_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_freed_slots")),
    )
    with op.batch_alter_table("freed_slots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_freed_slots_pending",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("processed_at IS NULL"),
            postgresql_where=sa.text("processed_at IS NULL"),
        )

    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("service_code", sa.String(length=8), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("therapist_ids", sa.JSON(), nullable=True),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("earliest_date", sa.Date(), nullable=False),
        sa.Column("latest_date", sa.Date(), nullable=True),
        sa.Column("location_type", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'booked', 'removed')", name=op.f("ck_waitlist_entries_status")
        ),
        sa.CheckConstraint(
            "duration_minutes BETWEEN 15 AND 480", name=op.f("ck_waitlist_entries_duration")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_waitlist_entries_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_waitlist_entries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_entries_org_status",
            ["organization_id", "status", "priority"],
            unique=False,
        )

    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("hold_key", sa.String(length=64), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column(
            "start_time", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "end_time", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("freed_slot_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "closed_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'declined', 'expired')",
            name=op.f("ck_waitlist_offers_status"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["waitlist_entries.id"],
            name=op.f("fk_waitlist_offers_entry_id_waitlist_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_waitlist_offers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
    )
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_offers_entry", ["entry_id", "therapist_id"], unique=False
        )
        batch_op.create_index(
            "ix_waitlist_offers_org_status",
            ["organization_id", "status", "expires_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_waitlist_offers_open_entry",
            ["entry_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_waitlist_offers_open_entry",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_waitlist_offers_org_status")
        batch_op.drop_index("ix_waitlist_offers_entry")

    op.drop_table("waitlist_offers")
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_waitlist_entries_org_status")

    op.drop_table("waitlist_entries")
    with op.batch_alter_table("freed_slots", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_freed_slots_pending",
            sqlite_where=sa.text("processed_at IS NULL"),
            postgresql_where=sa.text("processed_at IS NULL"),
        )

    op.drop_table("freed_slots")
