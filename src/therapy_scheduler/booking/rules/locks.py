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

import functools
import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, bindparam, cast, func, literal, select
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models import Hold


def lock_key(kind: str, person_id: uuid.UUID) -> int:
    """A stable signed 64-bit key for (kind, id): the same in every process and every release."""
    digest = hashlib.sha256(f"therapy-scheduler:{kind}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def sql_lock_key(kind: str, person_id: Any) -> ColumnElement[int]:
    """`lock_key` computed by PostgreSQL from a uuid column (the same SHA-256 of the same text,
    its first 8 bytes read as a signed big-endian integer; tests/booking/test_locks.py compares
    them), for a statement that locks the people of a row it reads."""
    digest = func.sha256(
        func.convert_to(literal(f"therapy-scheduler:{kind}:") + cast(person_id, Text), "UTF8")
    )
    hex_digits = literal("x") + func.encode(func.substring(digest, 1, 8), "hex")
    return cast(cast(hex_digits, BIT(64)), BigInteger)


async def lock_people(
    conn: AsyncConnection,
    *,
    therapist_ids: Iterable[uuid.UUID] = (),
    client_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Block until this transaction alone may book for these therapists and clients."""
    if conn.dialect.name != "postgresql":
        return
    keys = people_lock_keys(therapist_ids, client_ids)
    if not keys:
        return
    # One round trip: PostgreSQL evaluates a target list left to right, so the locks are still taken
    # one after the other in sorted order.
    await driver_read(_locks(len(keys)), conn.dialect).first(
        conn, {f"k{i}": key for i, key in enumerate(keys)}
    )


def people_lock_keys(
    therapist_ids: Iterable[uuid.UUID] = (), client_ids: Iterable[uuid.UUID] = ()
) -> list[int]:
    """The keys of these people's locks, in the order they are taken (sorted: no cycles)."""
    return sorted(
        {lock_key("therapist", t) for t in therapist_ids}
        | {lock_key("client", c) for c in client_ids}
    )


def advisory_locks(count: int, prefix: str = "k") -> list[Any]:
    """`pg_advisory_xact_lock(:k0), …` for `count` keys, as labelled columns: PostgreSQL evaluates
    a target list left to right, so the locks are taken one after the other in the keys' order."""
    return [
        func.pg_advisory_xact_lock(bindparam(f"{prefix}{i}", type_=BigInteger())).label(
            f"{prefix}{i}"
        )
        for i in range(count)
    ]


@functools.cache
def _locks(count: int) -> Any:
    """`SELECT pg_advisory_xact_lock(:k0), …` for `count` keys, built once per count."""
    return select(*advisory_locks(count))


def _hold_people_locks(*, therapist: bool) -> Any:
    client = sql_lock_key("client", Hold.client_id).label("c")
    if not therapist:
        keys = select(client).where(_OF_HOLD).subquery()
        return select(func.pg_advisory_xact_lock(keys.c.c).label("client"))
    both = select(sql_lock_key("therapist", Hold.therapist_id).label("t"), client)
    keys = both.where(_OF_HOLD).subquery()
    # Left to right in one target list, as in `lock_people`: the smaller key first.
    return select(
        func.pg_advisory_xact_lock(func.least(keys.c.t, keys.c.c)).label("first"),
        func.pg_advisory_xact_lock(func.greatest(keys.c.t, keys.c.c)).label("second"),
    )


_OF_HOLD = (Hold.hold_key == bindparam("hold_key")) & (
    Hold.organization_id == bindparam("organization_id")
)
_HOLD_PEOPLE_LOCKS = {
    True: _hold_people_locks(therapist=True),
    False: _hold_people_locks(therapist=False),
}


async def lock_hold_people(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str, *, therapist: bool = True
) -> None:
    """`lock_people` for the therapist and the client (or the client alone) of the hold with this
    key, in the statement that finds them: one round trip instead of a lookup and then the locks.
    Its rows are read as they were before the locks were granted (the statement's snapshot), which
    is enough for the hold's people, who never change; what the transaction judges is read again
    by its next statement, under the locks. Nothing is locked when there is no such hold."""
    if conn.dialect.name != "postgresql":
        return
    params = {"hold_key": hold_key, "organization_id": organization_id}
    await driver_read(_HOLD_PEOPLE_LOCKS[therapist], conn.dialect).all(conn, params)


async def lock_user(conn: AsyncConnection, user_id: uuid.UUID) -> bool:
    """Block until this transaction alone may count and add holds of this user. Take it after the
    people locks and hold nothing else afterwards (see above). False where there is nothing to take
    (SQLite: the write transaction already runs alone)."""
    if conn.dialect.name != "postgresql":
        return False
    await driver_read(_locks(1), conn.dialect).first(conn, {"k0": lock_key("user", user_id)})
    return True
