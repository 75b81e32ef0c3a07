"""The PHI read log's client rows are checked once per statement on PostgreSQL (docs/DECISIONS.md,
"A client row of the audit log belongs to an event of its organization").

- PostgreSQL: the two foreign keys of `audit_event_clients` (to its event, to its organization)
  are replaced by one statement-level trigger: every row of an INSERT names an audit event of
  the same organization, checked with one query over the statement's new rows. The foreign keys
  checked each row on its own, two lookups and a row lock each, and were half of what a page's
  read log cost the database. Audit events are never updated or deleted (migration 0002's
  triggers), so an event found when its client rows are written stays.
- SQLite: a row-level trigger checks the same (the event's organization), beside the foreign keys
  it keeps (each check a lookup in the same process).

pg_dump does not know that the client rows follow their events: a data-only restore needs
`--disable-triggers` (docs/AUDIT_AND_FEEDS.md, "Append-only"); a whole dump creates the triggers
after its data, as it does foreign keys.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEYS = (
    ("fk_audit_event_clients_audit_event_id_audit_events", "audit_events", "audit_event_id", None),
    (
        "fk_audit_event_clients_organization_id_organizations",
        "organizations",
        "organization_id",
        "CASCADE",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, *_ in _FOREIGN_KEYS:
            op.drop_constraint(name, "audit_event_clients", type_="foreignkey")
        op.execute(
            # The tables' schema is fixed at creation: a restore runs with an empty search_path.
            "CREATE FUNCTION audit_event_clients_of_events() RETURNS trigger LANGUAGE plpgsql "
            "SET search_path FROM CURRENT AS $$ "
            "BEGIN "
            "IF EXISTS (SELECT FROM new_rows n WHERE NOT EXISTS ("
            "SELECT FROM audit_events e "
            "WHERE e.id = n.audit_event_id AND e.organization_id = n.organization_id)) THEN "
            "RAISE EXCEPTION 'audit_event_clients rows must name an audit event of their "
            "organization' USING ERRCODE = 'foreign_key_violation'; "
            "END IF; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_clients_of_events AFTER INSERT ON audit_event_clients "
            "REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_clients_of_events()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_event_clients_of_events BEFORE INSERT ON audit_event_clients "
            "WHEN NOT EXISTS (SELECT 1 FROM audit_events "
            "WHERE id = NEW.audit_event_id AND organization_id = NEW.organization_id) "
            "BEGIN SELECT RAISE(ABORT, "
            "'audit_event_clients rows must name an audit event of their organization'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_clients_of_events ON audit_event_clients")
        op.execute("DROP FUNCTION audit_event_clients_of_events()")
        for name, table, column, ondelete in _FOREIGN_KEYS:
            op.create_foreign_key(
                name, "audit_event_clients", table, [column], ["id"], ondelete=ondelete
            )
    else:
        op.execute("DROP TRIGGER audit_event_clients_of_events")
