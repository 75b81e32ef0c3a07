"""Supervision overlap (docs/BOOKING.md "Supervision overlap", docs/DECISIONS.md).

`sessions.supervises` and `hold_occurrences.supervises`: NULL for an ordinary session or held slot;
for a supervising one (a BCBA's 97155 inside an RBT's 97153), the service code of the session it
supervises, decided by the booking. On PostgreSQL each table's client exclusion constraint becomes two:

* `ex_<table>_client_overlap`: (client, time range, coalesce(supervises, '')) WITH (=, &&, =): two
  ordinary rows of one client never overlap, nor do two rows supervising the same code;
* `ex_<table>_client_supervision`: (client, time range, supervises IS NULL, coalesce(supervises,
  service_code)) WITH (=, &&, <>, <>): an ordinary row and a supervising one overlap only when the
  ordinary row's service code is the code the supervising one supervises.

So the database admits, per client and instant, at most one ordinary row and at most one row
supervising it (of its code). Containment, the allowed pairs and the supervisor's credential are the
application's rules, checked under the client's advisory lock (booking/rules/supervision.py). The
therapist constraints are unchanged: a therapist is never in two sessions or holds at once. SQLite has
no exclusion constraints; there the serialized check of booking is the rule, as before.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → the predicate of its rows that occupy time
_LIVE = {"sessions": "status <> 'cancelled'", "hold_occurrences": "active"}
_RANGE = "tstzrange(start_time, end_time, '[)')"


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supervises", sa.String(length=8), nullable=True))
        batch_op.create_index("ix_sessions_supervises", ["supervises", "start_time"], unique=False)
    with op.batch_alter_table("hold_occurrences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supervises", sa.String(length=8), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, live in _LIVE.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ex_{table}_client_overlap")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ex_{table}_client_overlap "
            f"EXCLUDE USING gist (client_id WITH =, {_RANGE} WITH &&, "
            f"(coalesce(supervises, '')) WITH =) WHERE ({live})"
        )
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ex_{table}_client_supervision "
            f"EXCLUDE USING gist (client_id WITH =, {_RANGE} WITH &&, "
            f"(supervises IS NULL) WITH <>, (coalesce(supervises, service_code)) WITH <>) "
            f"WHERE ({live})"
        )
        # A row never supervises its own service code.
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_supervises_other_code "
            "CHECK (supervises IS NULL OR supervises <> service_code)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, live in _LIVE.items():
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_supervises_other_code")
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ex_{table}_client_supervision")
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ex_{table}_client_overlap")
            # Fails if supervision overlaps exist: cancel or move them before downgrading.
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT ex_{table}_client_overlap "
                f"EXCLUDE USING gist (client_id WITH =, {_RANGE} WITH &&) WHERE ({live})"
            )
    with op.batch_alter_table("hold_occurrences", schema=None) as batch_op:
        batch_op.drop_column("supervises")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_supervises")
        batch_op.drop_column("supervises")
