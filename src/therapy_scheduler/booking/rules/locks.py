"""Serialization of bookings per therapist and per client (and of new holds per user, for the cap on
active holds), inside the booking transaction.

PostgreSQL: one transaction-scoped advisory lock per person (`pg_advisory_xact_lock` on a stable 64-bit
hash of the kind and id), always taken in sorted key order so that two bookings can never wait on each
other in a cycle. A new hold's user lock (`lock_user`) is taken after its people locks, as the last
step before COMMIT, and no transaction takes a people lock while holding a user lock: the order is
still global (people in key order, then the user), and the user lock, which every hold of one user
needs, is held for the shortest time. The locks are released by COMMIT/ROLLBACK. The exclusion
constraints of migration 0001 stay as the backstop: if anything ever slipped past the locks the
insert fails instead of double booking.

SQLite: `Database.write()` starts every write transaction with BEGIN IMMEDIATE, which already serializes
all writers of the file (across processes too), so there is nothing more to take.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


def lock_key(kind: str, person_id: uuid.UUID) -> int:
    """A stable signed 64-bit key for (kind, id): the same in every process and every release."""
    digest = hashlib.sha256(f"therapy-scheduler:{kind}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_people(
    conn: AsyncConnection,
    *,
    therapist_ids: Iterable[uuid.UUID] = (),
    client_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Block until this transaction alone may book for these therapists and clients."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted(
        {lock_key("therapist", t) for t in therapist_ids}
        | {lock_key("client", c) for c in client_ids}
    )
    if not keys:
        return
    # One round trip: PostgreSQL evaluates a target list left to right, so the locks are still taken
    # one after the other in sorted order.
    calls = ", ".join(f"pg_advisory_xact_lock(:k{i})" for i in range(len(keys)))
    await conn.execute(text(f"SELECT {calls}"), {f"k{i}": key for i, key in enumerate(keys)})


async def lock_user(conn: AsyncConnection, user_id: uuid.UUID) -> bool:
    """Block until this transaction alone may count and add holds of this user. Take it after the
    people locks and hold nothing else afterwards (see above). False where there is nothing to take
    (SQLite: the write transaction already runs alone)."""
    if conn.dialect.name != "postgresql":
        return False
    await conn.execute(_LOCK_ONE, {"key": lock_key("user", user_id)})
    return True


_LOCK_ONE = text("SELECT pg_advisory_xact_lock(:key)")
