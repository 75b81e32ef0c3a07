"""The people's locks taken by the statement that finds a hold (`lock_hold_people`) are the very locks
`lock_people` takes for the same people: the key PostgreSQL computes equals `lock_key`. The statement
that reads a booking's people takes their locks when asked, once, and only for people of the
caller's organization."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from sqlalchemy import Uuid, bindparam, select, text

from tests.booking.conftest import hold_body, hold_ok, monday
from tests.fixtures import C1, CB, ORG_A, T1, TB, U_ADMIN, Clinic
from therapy_scheduler.auth.principal import load_principal
from therapy_scheduler.booking.parties import require_people
from therapy_scheduler.booking.rules.locks import (
    lock_hold_people,
    lock_key,
    people_lock_keys,
    sql_lock_key,
)
from therapy_scheduler.errors import NotFound
from therapy_scheduler.infra.db import Database

_MINE = text(
    "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
    "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
)


def _unsigned(key: int) -> int:
    return key & 0xFFFF_FFFF_FFFF_FFFF


async def test_the_database_computes_lock_key(db: Database) -> None:
    if db.writer.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    ids = [uuid.uuid4() for _ in range(50)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    person = bindparam("person", type_=Uuid())
    async with db.read() as conn:
        for kind in ("therapist", "client", "user"):
            for person_id in ids:
                query = select(sql_lock_key(kind, person))
                computed = (await conn.execute(query, {"person": person_id})).scalar_one()
                assert computed == lock_key(kind, person_id)


async def test_the_hold_lookup_takes_the_people_locks(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    if db.writer.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    held = await hold_ok(client, booking, hold_body(monday(1)))
    organization = uuid.UUID(ORG_A)
    expected = {
        _unsigned(lock_key("therapist", uuid.UUID(T1))),
        _unsigned(lock_key("client", uuid.UUID(C1))),
    }
    async with db.write() as conn:
        await lock_hold_people(conn, organization, held["hold_key"])
        assert {_unsigned(k) for (k,) in await conn.execute(_MINE)} == expected
    async with db.write() as conn:
        await lock_hold_people(conn, organization, held["hold_key"], therapist=False)
        assert {_unsigned(k) for (k,) in await conn.execute(_MINE)} == {
            _unsigned(lock_key("client", uuid.UUID(C1)))
        }
    async with db.write() as conn:  # no such hold (or another organization's): nothing locked
        await lock_hold_people(conn, organization, "no-such-key")
        await lock_hold_people(conn, uuid.uuid4(), held["hold_key"])
        assert (await conn.execute(_MINE)).all() == []


@pytest.mark.parametrize(
    ("holds", "calendar"),
    [(False, False), (True, False), (True, True)],
    ids=["people", "people-and-holds", "people-holds-and-calendar"],
)
async def test_the_people_read_takes_their_locks(
    booking: Clinic, db: Database, holds: bool, calendar: bool
) -> None:
    if db.writer.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    therapist, client = uuid.UUID(T1), uuid.UUID(C1)
    expected = {_unsigned(k) for k in people_lock_keys([therapist], [client])}
    assert expected == {
        _unsigned(lock_key("therapist", therapist)),
        _unsigned(lock_key("client", client)),
    }
    start = datetime.combine(monday(1), time(15), UTC)
    span = (start, start + timedelta(hours=1)) if calendar else None
    async with db.write() as conn:
        principal = await load_principal(conn, uuid.UUID(U_ADMIN))
        people = await require_people(
            conn,
            principal,
            therapist,
            client,
            holds_at=start if holds else None,
            calendar=span,
            lock=True,
        )
        assert people.locked
        # Once, however many rows of working hours the statement reads.
        assert sorted(_unsigned(k) for (k,) in await conn.execute(_MINE)) == sorted(expected)
    async with db.write() as conn:  # without `lock`, none
        people = await require_people(conn, principal, therapist, client, calendar=span)
        assert not people.locked
        assert (await conn.execute(_MINE)).all() == []


@pytest.mark.parametrize(
    ("therapist", "client"), [(TB, C1), (T1, CB), (TB, CB)], ids=["therapist", "client", "both"]
)
async def test_another_clinics_people_are_not_locked(
    booking: Clinic, db: Database, therapist: str, client: str
) -> None:
    """A guessed id of another organization's therapist or client: 404 and, on PostgreSQL, no lock
    taken."""
    async with db.write() as conn:
        principal = await load_principal(conn, uuid.UUID(U_ADMIN))
        with pytest.raises(NotFound):
            await require_people(
                conn, principal, uuid.UUID(therapist), uuid.UUID(client), lock=True
            )
        if db.writer.dialect.name == "postgresql":
            assert (await conn.execute(_MINE)).all() == []
