"""The sums of an authorized service's units read only indexes (docs/PERFORMANCE.md,
"schedule_week"; docs/DECISIONS.md, "The week's authorization checks read what the week's
candidates name").

- `ix_sessions_authorization_units` was `(authorization_id, service_code, consumes_units, units)`:
  enough for a service's units in all, not for its units up to a session (the running sum behind
  "beyond approved units"), which then fetched every one of the service's sessions from the table.
  It becomes `(authorization_id, service_code, consumes_units, start_time, id, units)`: both sums,
  and a booking's units within a week, are read from the index alone.
- `ix_authorization_services_capped`: the services that carry a weekly cap (a few among many),
  which the week's check looks up by authorization and service.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CAPPED = "weekly_cap_units IS NOT NULL OR weekly_cap_minutes IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_authorization_units")
        batch_op.create_index(
            "ix_sessions_authorization_units",
            ["authorization_id", "service_code", "consumes_units", "start_time", "id", "units"],
            unique=False,
        )
    with op.batch_alter_table("authorization_services", schema=None) as batch_op:
        batch_op.create_index(
            "ix_authorization_services_capped",
            ["authorization_id", "service_code"],
            unique=False,
            sqlite_where=sa.text(_CAPPED),
            postgresql_where=sa.text(_CAPPED),
        )


def downgrade() -> None:
    with op.batch_alter_table("authorization_services", schema=None) as batch_op:
        batch_op.drop_index("ix_authorization_services_capped")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_authorization_units")
        batch_op.create_index(
            "ix_sessions_authorization_units",
            ["authorization_id", "service_code", "consumes_units", "units"],
            unique=False,
        )
