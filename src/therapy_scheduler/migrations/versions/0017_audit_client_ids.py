"""An audit event carries the clients it concerns itself (docs/DECISIONS.md, "The clients of an
audit event are a column of the event").

- Both databases: `audit_events.client_ids`, filled from the client rows of `audit_event_clients`.
- PostgreSQL: a GIN index on that column answers the client filter; `audit_event_clients` (one row
  and two index entries per event and client, about 24 of them per page of sessions read) and
  migration 0016's trigger are dropped.
- SQLite, which cannot index an array's elements: `audit_event_clients` stays as the column's
  index, rebuilt as one B-tree (organization, client, time, event) without a rowid, and is filled
  by a trigger from each new event's `client_ids`: nothing writes it but that trigger, so its rows
  name their event and its organization by construction (the foreign keys and 0016's trigger go).
  Its ids are canonical text there, as in the column.

Both audit tables stay append-only (migration 0002's triggers, recreated for SQLite's new table).
The downgrade writes the client rows back from the column.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's `Uuid` columns hold 32 hex digits; the column and its index hold canonical text.
_DASHED = (
    "lower(substr({0}, 1, 8) || '-' || substr({0}, 9, 4) || '-' || substr({0}, 13, 4) || '-' || "
    "substr({0}, 17, 4) || '-' || substr({0}, 21, 12))"
)
_SQLITE_INDEX_TRIGGER = (
    "CREATE TRIGGER audit_events_client_index AFTER INSERT ON audit_events "
    "WHEN NEW.client_ids <> '[]' BEGIN "
    "INSERT INTO audit_event_clients (organization_id, client_id, occurred_at, audit_event_id) "
    "SELECT DISTINCT NEW.organization_id, value, NEW.occurred_at, NEW.id "
    "FROM json_each(NEW.client_ids); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _upgrade_postgresql() -> None:
    op.execute("ALTER TABLE audit_events ADD COLUMN client_ids uuid[] NOT NULL DEFAULT '{}'")
    # The events are append-only for the service; this one rewrite is the migration's.
    op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    op.execute(
        "UPDATE audit_events e SET client_ids = c.ids FROM ("
        "SELECT audit_event_id, array_agg(client_id ORDER BY client_id) AS ids "
        "FROM audit_event_clients GROUP BY audit_event_id) c WHERE c.audit_event_id = e.id"
    )
    op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
    op.execute("CREATE INDEX ix_audit_events_clients ON audit_events USING gin (client_ids)")
    op.execute("DROP TABLE audit_event_clients")
    op.execute("DROP FUNCTION audit_event_clients_of_events()")


def _downgrade_postgresql() -> None:
    op.execute(
        "CREATE TABLE audit_event_clients ("
        "audit_event_id bigint NOT NULL, client_id uuid NOT NULL, "
        "organization_id uuid NOT NULL, occurred_at timestamptz NOT NULL, "
        "CONSTRAINT pk_audit_event_clients PRIMARY KEY (audit_event_id, client_id))"
    )
    op.execute(
        "INSERT INTO audit_event_clients (audit_event_id, client_id, organization_id, occurred_at) "
        "SELECT DISTINCT e.id, c.id, e.organization_id, e.occurred_at "
        "FROM audit_events e CROSS JOIN LATERAL unnest(e.client_ids) AS c(id)"
    )
    op.execute(
        "CREATE INDEX ix_audit_event_clients_org_client_time ON audit_event_clients "
        "(organization_id, client_id, occurred_at, audit_event_id)"
    )
    op.execute(
        "CREATE TRIGGER audit_event_clients_append_only BEFORE UPDATE OR DELETE "
        "ON audit_event_clients FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
    )
    # Migration 0016's check of the client rows, as it created it.
    op.execute(
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
    op.execute("DROP INDEX ix_audit_events_clients")
    op.execute("ALTER TABLE audit_events DROP COLUMN client_ids")


def _append_only_sqlite(table: str, verbs: Sequence[str] = ("UPDATE", "DELETE")) -> None:
    """Migration 0002's triggers of an append-only table, on SQLite."""
    for verb in verbs:
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def _upgrade_sqlite() -> None:
    op.execute("ALTER TABLE audit_events ADD COLUMN client_ids JSON NOT NULL DEFAULT '[]'")
    op.execute("DROP TRIGGER audit_events_no_update")
    dashed = _DASHED.format("client_id")
    op.execute(
        "UPDATE audit_events SET client_ids = ("  # noqa: S608 (fixed text)
        f"SELECT json_group_array(id) FROM (SELECT {dashed} AS id FROM audit_event_clients "
        "WHERE audit_event_id = audit_events.id ORDER BY id)) "
        "WHERE id IN (SELECT audit_event_id FROM audit_event_clients)"
    )
    _append_only_sqlite("audit_events", ["UPDATE"])
    op.execute(
        "CREATE TABLE audit_event_clients_index ("
        "organization_id CHAR(32) NOT NULL, client_id TEXT NOT NULL, "
        "occurred_at DATETIME NOT NULL, audit_event_id INTEGER NOT NULL, "
        "PRIMARY KEY (organization_id, client_id, occurred_at, audit_event_id)) WITHOUT ROWID"
    )
    op.execute(
        "INSERT INTO audit_event_clients_index "  # noqa: S608 (fixed text)
        f"SELECT organization_id, {dashed}, occurred_at, audit_event_id FROM audit_event_clients"
    )
    # Dropping the table drops its triggers (0002's, 0016's).
    op.execute("DROP TABLE audit_event_clients")
    op.execute("ALTER TABLE audit_event_clients_index RENAME TO audit_event_clients")
    _append_only_sqlite("audit_event_clients")
    op.execute(_SQLITE_INDEX_TRIGGER)


def _downgrade_sqlite() -> None:
    op.execute("DROP TRIGGER audit_events_client_index")
    op.execute(
        "CREATE TABLE audit_event_clients_rows ("
        "audit_event_id INTEGER NOT NULL, client_id CHAR(32) NOT NULL, "
        "organization_id CHAR(32) NOT NULL, occurred_at DATETIME NOT NULL, "
        "CONSTRAINT pk_audit_event_clients PRIMARY KEY (audit_event_id, client_id), "
        "CONSTRAINT fk_audit_event_clients_audit_event_id_audit_events "
        "FOREIGN KEY(audit_event_id) REFERENCES audit_events (id), "
        "CONSTRAINT fk_audit_event_clients_organization_id_organizations "
        "FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE)"
    )
    op.execute(
        "INSERT INTO audit_event_clients_rows "
        "SELECT audit_event_id, replace(client_id, '-', ''), organization_id, occurred_at "
        "FROM audit_event_clients"
    )
    op.execute("DROP TABLE audit_event_clients")
    op.execute("ALTER TABLE audit_event_clients_rows RENAME TO audit_event_clients")
    op.execute(
        "CREATE INDEX ix_audit_event_clients_org_client_time ON audit_event_clients "
        "(organization_id, client_id, occurred_at, audit_event_id)"
    )
    _append_only_sqlite("audit_event_clients")
    # Migration 0016's check of the client rows, as it created it.
    op.execute(
        "CREATE TRIGGER audit_event_clients_of_events BEFORE INSERT ON audit_event_clients "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_events "
        "WHERE id = NEW.audit_event_id AND organization_id = NEW.organization_id) "
        "BEGIN SELECT RAISE(ABORT, "
        "'audit_event_clients rows must name an audit event of their organization'); END"
    )
    op.execute("ALTER TABLE audit_events DROP COLUMN client_ids")
