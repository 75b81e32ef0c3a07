"""`ix_sessions_supervises` holds the supervising sessions only (docs/BOOKING.md "Supervision
overlap", docs/PERFORMANCE.md "What limits each figure": booking).

Migration 0006 indexed `(supervises, start_time)` over every session, so every ordinary session
(NULL there: nearly all of them) entered it at each booking and import. Its one reader, the
supervision rule's search for the supervisions of a client within a range
(booking/queries/supervision.py), names the client and the supervised code: the index becomes
`(client_id, supervises, start_time) WHERE supervises IS NOT NULL` on both databases (a condition
`supervises = :code` implies the index's). Answers are unchanged; ordinary sessions no longer
write to it.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUPERVISING = "supervises IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_supervises")
        batch_op.create_index(
            "ix_sessions_supervises",
            ["client_id", "supervises", "start_time"],
            unique=False,
            sqlite_where=sa.text(_SUPERVISING),
            postgresql_where=sa.text(_SUPERVISING),
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_supervises")
        batch_op.create_index("ix_sessions_supervises", ["supervises", "start_time"], unique=False)
