"""`DriverRead` (infra/driver_read.py) runs a statement on the driver directly: the row it returns
is the one SQLAlchemy's `execute` returns (values and their Python types), the statement is seen by
the engine's cursor-execute events, a driver error is SQLAlchemy's error (a disconnect invalidates
the connection and counts as an outage), and what it cannot run directly goes through `execute`."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

import httpx
import pytest
from sqlalchemy import (
    Float,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    column,
    event,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from tests.fixtures import ORG_A, U_ADMIN, Clinic
from therapy_scheduler.auth.principal import caller_row
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.driver_read import DriverRead, in_ids
from therapy_scheduler.infra.http import is_database_outage
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import ChangeCounter, Session
from therapy_scheduler.models.base import UTCDateTime


def _typed_statement() -> Select[Any]:
    """A row with every kind of value the hot reads return: uuids, datetimes, JSON, text, counts,
    floats, NULLs; parameters bound several times and literal values bound by SQLAlchemy."""
    caller = caller_row().subquery("caller")
    first = (
        select(Session.id, Session.start_time, Session.units)
        .where(Session.organization_id == bindparam("organization_id"))
        .order_by(Session.start_time, Session.id)
        .limit(1)
        .subquery("first")
    )
    return select(
        select(func.count())
        .select_from(Session)
        .where(Session.organization_id == bindparam("organization_id"))
        .scalar_subquery()
        .label("total"),
        select(func.count())
        .select_from(Session)
        .where(
            Session.organization_id == bindparam("organization_id"),
            Session.status == "scheduled",
            Session.start_time > bindparam("now", type_=UTCDateTime()),
        )
        .scalar_subquery()
        .label("upcoming"),
        cast(literal(2.5), Float).label("ratio"),
        cast(literal("text"), Text).label("word"),
        first.c.id.label("first_id"),
        first.c.start_time.label("first_start"),
        first.c.units.label("first_units"),
        *(column.label(f"caller_{column.name}") for column in caller.c),
    ).select_from(first.outerjoin(caller, true()))


async def _both(db: Database, statement: Select[Any], values: dict[str, Any]) -> tuple[Any, Any]:
    async with db.read() as conn:
        through_sqlalchemy = (await conn.execute(statement, values)).one()
        direct = await DriverRead(statement, conn.dialect).one(conn, values)
    return through_sqlalchemy, direct


@pytest.mark.parametrize("caller", [U_ADMIN, str(uuid.UUID(int=1))])
async def test_the_row_is_the_one_sqlalchemy_returns(
    db: Database, clinic: Clinic, caller: str
) -> None:
    values = {"organization_id": uuid.UUID(ORG_A), "now": utcnow(), "caller_id": uuid.UUID(caller)}
    expected, direct = await _both(db, _typed_statement(), values)
    assert tuple(direct) == tuple(expected)
    assert [type(v) for v in direct] == [type(v) for v in expected]
    assert direct._fields == tuple(expected._fields)
    assert direct.total > 0
    assert isinstance(direct.first_id, uuid.UUID)
    if caller == U_ADMIN:
        assert isinstance(direct.caller_settings, dict)
    else:
        assert direct.caller_id is None  # no such user: the outer join's NULLs


async def test_the_statement_is_seen_by_the_engine_events(db: Database, clinic: Clinic) -> None:
    seen: list[tuple[str, str]] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(("before", statement))

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(("after", statement))

    statement = select(func.count()).select_from(Session)
    event.listen(db.reader.sync_engine, "before_cursor_execute", before)
    event.listen(db.reader.sync_engine, "after_cursor_execute", after)
    try:
        async with db.read() as conn:
            read = DriverRead(statement, conn.dialect)
            row = await read.one(conn, {})
    finally:
        event.remove(db.reader.sync_engine, "before_cursor_execute", before)
        event.remove(db.reader.sync_engine, "after_cursor_execute", after)
    assert row[0] > 0
    assert seen == [("before", read.sql), ("after", read.sql)]


async def test_expanding_parameters_go_through_sqlalchemy(db: Database, clinic: Clinic) -> None:
    statement = (
        select(func.count())
        .select_from(Session)
        .where(Session.status.in_(bindparam("statuses", expanding=True)))
    )
    values = {"statuses": ["scheduled", "completed"]}
    expected, direct = await _both(db, statement, values)
    assert tuple(direct) == tuple(expected)


async def test_a_driver_error_is_sqlalchemys_error(db: Database, clinic: Clinic) -> None:
    failing: Any
    if db.dialect == "sqlite":  # SQLite divides by zero into NULL
        failing = func.json_extract(bindparam("value", type_=Text()), "$")
        values: dict[str, Any] = {"value": "not json"}
    else:
        failing = func.count() / bindparam("value")
        values = {"value": 0}
    statement = select(failing.label("failing")).select_from(Session)
    async with db.read() as conn:
        with pytest.raises(DBAPIError) as raised:
            await DriverRead(statement, conn.dialect).one(conn, values)
        assert not raised.value.connection_invalidated
    # The connection still serves its next read.
    async with db.read() as conn:
        assert (await DriverRead(select(literal(1)), conn.dialect).one(conn, {}))[0] == 1


async def test_a_connection_gone_mid_request_is_an_outage_and_is_replaced(
    db: Database, clinic: Clinic, client: httpx.AsyncClient
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("a server that ends a connection: PostgreSQL")
    statement = select(func.count()).select_from(Session)
    async with db.read() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        async with db.writer.connect() as admin:
            await admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            await admin.commit()
        with pytest.raises(DBAPIError) as raised:
            await DriverRead(statement, conn.dialect).one(conn, {})
        assert raised.value.connection_invalidated
        assert is_database_outage(raised.value)
    # The pool hands out a live connection afterwards.
    async with db.read() as conn:
        assert (await DriverRead(statement, conn.dialect).one(conn, {}))[0] > 0
    response = await client.get(
        "/get-sessions-optimized", headers=clinic.headers("admin"), params={"limit": "5"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("make", [None, tuple])
async def test_all_rows_are_those_sqlalchemy_returns(
    db: Database, clinic: Clinic, make: Any
) -> None:
    """`all`: every row, in order, with the values and types of `execute`; a list of ids given
    with `in_ids` (one array on PostgreSQL) does not keep the statement off the driver there."""
    async with db.read() as conn:
        ids = list((await conn.execute(select(Session.therapist_id).distinct())).scalars())
        statement = (
            select(Session.id, Session.therapist_id, Session.start_time, Session.units)
            .where(in_ids(Session.therapist_id, "ids", conn.dialect.name))
            .order_by(Session.start_time, Session.id)
        )
        read = DriverRead(statement, conn.dialect)
        expected = (await conn.execute(statement, {"ids": ids})).all()
        rows = await read.all(conn, {"ids": ids}, make)
    assert len(expected) > 1
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert [[type(v) for v in r] for r in rows] == [[type(v) for v in r] for r in expected]
    assert all(r.start_time.tzinfo is UTC for r in expected)
    if make is None:
        assert rows[0]._fields == ("id", "therapist_id", "start_time", "units")
    else:
        assert type(rows[0]) is tuple
    assert read._direct == (db.dialect == "postgresql")


def _bump(organization_id: uuid.UUID) -> Any:
    """A statement that writes and returns a row: the change counter's bump of stripe 0."""
    return (
        text(
            "INSERT INTO change_counters (organization_id, stripe, version) VALUES (:org, 0, 1) "
            "ON CONFLICT (organization_id, stripe) DO UPDATE "
            "SET version = change_counters.version + 1 RETURNING version"
        )
        .bindparams(bindparam("org", type_=ChangeCounter.organization_id.type))
        .columns(column("version"))
    )


async def _version(db: Database) -> int:
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(ChangeCounter.version).where(
                    ChangeCounter.organization_id == uuid.UUID(ORG_A), ChangeCounter.stripe == 0
                )
            )
        ).scalar_one_or_none()
    return int(found or 0)


async def test_in_a_write_transaction_the_statement_is_part_of_it(
    db: Database, clinic: Clinic
) -> None:
    """In a write transaction (a booking's), also as its first statement: the row is the one
    `execute` returns, the statement runs in the transaction (what it writes commits or rolls
    back with it), and `first` runs a statement that writes once (None without a row)."""
    values = {"organization_id": uuid.UUID(ORG_A), "now": utcnow(), "caller_id": uuid.UUID(U_ADMIN)}
    bump = _bump(uuid.UUID(ORG_A))
    before = await _version(db)
    async with db.writer.connect() as conn:
        async with conn.begin():
            direct = await DriverRead(_typed_statement(), conn.dialect).one(conn, values)
            expected = (await conn.execute(_typed_statement(), values)).one()
            assert tuple(direct) == tuple(expected)
            assert [type(v) for v in direct] == [type(v) for v in expected]
            if db.dialect == "postgresql":
                now = select(func.txid_current())
                on_driver = (await DriverRead(now, conn.dialect).one(conn, {}))[0]
                assert on_driver == (await conn.execute(now)).scalar_one()
            read = DriverRead(bump, conn.dialect)
            written = await read.first(conn, {"org": uuid.UUID(ORG_A)})
            assert written is not None
            assert written.version == before + 1
            assert read._results is not None  # run on the driver, not through `execute`
        transaction = await conn.begin()
        await DriverRead(bump, conn.dialect).first(conn, {"org": uuid.UUID(ORG_A)})
        await transaction.rollback()
    assert await _version(db) == before + 1
    nothing = select(literal(1)).where(literal(1) == bindparam("other", type_=Integer()))
    async with db.writer.connect() as conn, conn.begin():
        assert await DriverRead(nothing, conn.dialect).first(conn, {"other": 2}) is None


async def test_the_parameters_are_those_construct_params_gives(
    db: Database, clinic: Clinic
) -> None:
    """Each position's value is found without `construct_params` where it can be (a value given
    by key or name, else the bind's own, as for `literal`), converted by the bind's processor: the
    same list as through `construct_params`; a missing required value is its error."""
    values = {"organization_id": uuid.UUID(ORG_A), "now": utcnow(), "caller_id": uuid.UUID(U_ADMIN)}
    async with db.read() as conn:
        for statement, given in (
            (_typed_statement(), values),
            (_bump(uuid.UUID(ORG_A)), {"org": uuid.UUID(ORG_A)}),
            (select(literal("session").label("kind"), literal(3).label("n")), {}),
        ):
            read = DriverRead(statement, conn.dialect)
            assert read._lookup is not None
            fast = read._parameters(given)
            read._lookup = None
            assert fast == read._parameters(given)
        with pytest.raises(InvalidRequestError, match="caller_id"):
            DriverRead(_typed_statement(), conn.dialect)._parameters(
                {"organization_id": uuid.UUID(ORG_A), "now": utcnow()}
            )
