"""Sessions last at most 8 hours (CHECK on PostgreSQL).

The bound lets every "sessions overlapping [lo, hi)" query add `start_time > lo - 8 hours`, so the
(therapist_id, start_time) and (client_id, start_time) indexes scan the range only, not the whole
history before `hi` (docs/PERFORMANCE.md, docs/DECISIONS.md). The importer refuses longer sessions and
booking allows 15 to 480 minutes, on both databases; SQLite has no ALTER TABLE … ADD CONSTRAINT, so
there the rule is the application's.

The constraint is added NOT VALID (no long lock) and then validated; a database holding a longer
session stops the migration with a message naming how many there are.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "end_time - start_time <= interval '8 hours'"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    longer = bind.execute(
        sa.text("SELECT count(*) FROM sessions WHERE end_time - start_time > interval '8 hours'")
    ).scalar()
    if longer:
        raise RuntimeError(
            f"{longer} session(s) last longer than 8 hours; shorten or split them, then migrate again"
        )
    op.execute(
        f"ALTER TABLE sessions ADD CONSTRAINT ck_sessions_max_length CHECK ({_CHECK}) NOT VALID"
    )
    op.execute("ALTER TABLE sessions VALIDATE CONSTRAINT ck_sessions_max_length")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE sessions DROP CONSTRAINT ck_sessions_max_length")
