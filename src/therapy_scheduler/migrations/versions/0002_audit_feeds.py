"""audit log filters and append-only triggers; calendar feeds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

- audit_events: indexes for the filters of GET /admin/audit-events; audit_event_clients (which clients an
  event concerns, one row per event and client) for the client filter.
- Both audit tables reject UPDATE and DELETE through triggers, on SQLite and PostgreSQL.
- calendar_feeds: per-therapist ICS feeds; only the SHA-256 of each feed token is stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import therapy_scheduler.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = ("audit_events", "audit_event_clients")


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_org_actor",
            ["organization_id", "actor_user_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_org_entity",
            ["organization_id", "entity_type", "entity_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_org_action",
            ["organization_id", "action", "occurred_at", "id"],
            unique=False,
        )

    op.create_table(
        "audit_event_clients",
        sa.Column(
            "audit_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["audit_event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_event_clients_audit_event_id_audit_events"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_event_clients_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audit_event_id", "client_id", name=op.f("pk_audit_event_clients")),
    )
    with op.batch_alter_table("audit_event_clients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_event_clients_org_client_time",
            ["organization_id", "client_id", "occurred_at", "audit_event_id"],
            unique=False,
        )

    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "revoked_at", therapy_scheduler.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_calendar_feeds_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f("fk_calendar_feeds_therapist_id_therapists"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_calendar_feeds_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index("uq_calendar_feeds_token_hash", ["token_hash"], unique=True)
        batch_op.create_index(
            "ix_calendar_feeds_org_therapist",
            ["organization_id", "therapist_id", "created_at"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
    else:
        for table in _APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    else:
        for table in _APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")

    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_feeds_org_therapist")
        batch_op.drop_index("uq_calendar_feeds_token_hash")
    op.drop_table("calendar_feeds")

    with op.batch_alter_table("audit_event_clients", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_clients_org_client_time")
    op.drop_table("audit_event_clients")

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_action")
        batch_op.drop_index("ix_audit_events_org_entity")
        batch_op.drop_index("ix_audit_events_org_actor")
