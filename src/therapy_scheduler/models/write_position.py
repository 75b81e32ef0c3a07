from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models.base import Base

# The key of the floor row (both columns): see `UserWritePosition`.
FLOOR_KEY = uuid.UUID(int=0)


class UserWritePosition(Base):
    """The primary's WAL position after each user's last write (with a read replica, PostgreSQL):
    that user's reads, in any API process, use the replica only once it has replayed this far
    (infra/replica.py; docs/DECISIONS.md, "Scale-out: replica reads and PgBouncer").

    UNLOGGED on PostgreSQL (migration 0013): no WAL, so a write costs no second flush and the
    replicas never receive it; only the primary reads it. A crash restart empties it, and with it
    the floor row (`FLOOR_KEY`, `FLOOR_KEY`), which the migration inserts at 0 and every stored
    position re-inserts (at its own position) when missing: while it is missing, every reader waits
    for the replica to reach the primary's current position, so no position lost in the crash is
    ever read past. No foreign keys: the floor row belongs to no organization."""

    __tablename__ = "user_write_positions"

    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
