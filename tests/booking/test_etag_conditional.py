"""Conditional GETs of the read endpoints (docs/API.md, "Conditional requests"): the ETag, the 304
without the read statements, what a tag is bound to, and answers that change as time passes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, make_url, select, text, update

from tests.booking.conftest import book, hold_body, hold_ok, monday
from tests.fixtures import A1, T1, U_SCHED, Clinic
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import Hold, HoldOccurrence, Session, User

WEEK = {"start_date": monday(1).isoformat(), "end_date": (monday(1) + timedelta(6)).isoformat()}
ROUTES = [
    ("/get-schedule-data-batch", {**WEEK, "therapist_ids": T1, "include_availability": "true"}),
    ("/get-sessions-optimized", {"limit": "10"}),
    ("/get-dropdown-data", {"types": "therapists,clients"}),
]


@contextmanager
def statements_on_reader(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(db.reader.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.reader.sync_engine, "before_cursor_execute", record)


async def _phi_reads(app: FastAPI, db: Database) -> int:
    await app.state.audit_writer.flush()
    async with db.read() as conn:
        query = text("SELECT count(*) FROM audit_events WHERE action = 'phi.read'")
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize(("path", "query"), ROUTES)
async def test_a_matching_tag_gets_304_without_the_read_statements(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
    booking: Clinic,
    db: Database,
    path: str,
    query: dict[str, str],
) -> None:
    app, client = app_and_client
    headers = booking.headers("scheduler")
    first = await client.get(path, params=query, headers=headers)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    assert tag.endswith('"')
    assert first.headers["cache-control"] == "no-store"
    phi_reads = await _phi_reads(app, db)

    with statements_on_reader(db) as statements:
        again = await client.get(path, params=query, headers={**headers, "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == "no-store"
    assert again.headers["vary"] == "Authorization"
    # Only the caller, the organization's version and the check of what time changes were read.
    assert statements, "the version is read"
    allowed = ("from users", "from change_counters", "from holds", "from sessions")
    assert all(any(a in s for a in allowed) for s in statements), statements
    assert not any("json" in s or "from therapists" in s for s in statements), statements
    # A 304 shows nothing: no PHI read is logged for it (docs/SECURITY.md).
    assert await _phi_reads(app, db) == phi_reads

    # A list of tags, the weak form or the strong form of the same tag: all match.
    for header in (f'"x", {tag}', tag.removeprefix("W/")):
        r = await client.get(path, params=query, headers={**headers, "If-None-Match": header})
        assert r.status_code == 304, header


@pytest.mark.parametrize(("path", "query"), ROUTES[:2])
async def test_a_board_revalidating_its_week_reads_one_statement(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
    booking: Clinic,
    db: Database,
    path: str,
    query: dict[str, str],
) -> None:
    """The week view and the session list, reloaded by a caller this process has served: the
    version and what time changed since the tag are one statement; the caller is not re-read."""
    _, client = app_and_client
    headers = booking.headers("scheduler")
    tag = (await client.get(path, params=query, headers=headers)).headers["etag"]
    with statements_on_reader(db) as statements:
        again = await client.get(path, params=query, headers={**headers, "If-None-Match": tag})
    assert again.status_code == 304
    assert len(statements) == 1, statements
    assert "from change_counters" in statements[0]


@pytest.mark.parametrize(("path", "query"), ROUTES)
@pytest.mark.parametrize("change", ["deactivated", "demoted"])
async def test_a_caller_changed_since_the_tag_gets_no_304(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
    booking: Clinic,
    db: Database,
    path: str,
    query: dict[str, str],
    change: str,
) -> None:
    """A tag outlives no change to its caller, even one this process has not re-read: the change is
    a write, and a tag only matches while nothing was written."""
    _, client = app_and_client
    headers = booking.headers("scheduler")
    tag = (await client.get(path, params=query, headers=headers)).headers["etag"]
    values = {"is_active": False} if change == "deactivated" else {"role": "therapist"}
    async with db.write() as conn:
        await conn.execute(update(User).where(User.id == uuid.UUID(U_SCHED)).values(**values))
    again = await client.get(path, params=query, headers={**headers, "If-None-Match": tag})
    if change == "deactivated":
        assert again.status_code == 401
        assert again.json()["code"] == "UNAUTHORIZED"
    else:  # a therapist now (without a therapist row): they see nothing of T1's
        assert again.status_code in (200, 403, 404)
        assert again.headers.get("etag") != tag


@pytest.mark.parametrize(("path", "query"), ROUTES)
async def test_a_tag_is_bound_to_its_caller_and_its_query(
    client: httpx.AsyncClient, booking: Clinic, path: str, query: dict[str, str]
) -> None:
    tag = (await client.get(path, params=query, headers=booking.headers("scheduler"))).headers[
        "etag"
    ]
    # The same tag from another user of the organization, or for another query: the answer.
    other_user = await client.get(
        path, params=query, headers={**booking.headers("admin"), "If-None-Match": tag}
    )
    assert other_user.status_code == 200
    assert other_user.headers["etag"] != tag
    other_query = await client.get(
        path,
        params={**query, "time_zone": "Asia/Tokyo"} if "dropdown" not in path else {},
        headers={**booking.headers("scheduler"), "If-None-Match": tag},
    )
    assert other_query.status_code == 200
    # Tags that are not ours, malformed or `*`: the answer.
    for header in ('"abc"', 'W/"zz-zz"', "*", "", 'W/"ffffffffffffff-abc"'):
        r = await client.get(
            path, params=query, headers={**booking.headers("scheduler"), "If-None-Match": header}
        )
        assert r.status_code == 200, header


async def test_the_post_form_of_the_batch_has_no_etag(
    client: httpx.AsyncClient, booking: Clinic
) -> None:
    body = {"start_date": WEEK["start_date"], "end_date": WEEK["end_date"]}
    r = await client.post("/get-schedule-data-batch", json=body, headers=booking.headers("admin"))
    assert r.status_code == 200
    assert "etag" not in r.headers


async def _without_a_write(db: Database, statement: Any) -> None:
    """Change rows the way time does (a deadline passing), outside `Database.write()`: no version
    is bumped."""
    async with db.writer.connect() as conn, conn.begin():
        await conn.execute(statement)


async def test_a_hold_expiring_after_the_tag_makes_it_stale(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    held = await hold_ok(client, booking, hold_body(monday(1), "10:00", "11:00"))
    query = {**WEEK, "therapist_ids": T1, "include_availability": "true"}
    headers = booking.headers("scheduler")
    first = await client.get("/get-schedule-data-batch", params=query, headers=headers)
    tag = first.headers["etag"]
    conditional = {**headers, "If-None-Match": tag}
    assert (
        await client.get("/get-schedule-data-batch", params=query, headers=conditional)
    ).status_code == 304

    # The hold's deadline passes (now, after the tag's instant): its slot is free again.
    deadline = utcnow()
    mine = Hold.hold_key == held["hold_key"]
    await _without_a_write(db, update(Hold).where(mine).values(expires_at=deadline))
    await _without_a_write(
        db,
        update(HoldOccurrence)
        .where(HoldOccurrence.hold_id.in_(select(Hold.id).where(mine)))
        .values(expires_at=deadline),
    )
    r = await client.get("/get-schedule-data-batch", params=query, headers=conditional)
    assert r.status_code == 200
    assert r.headers["etag"] != tag
    assert r.json()["data"]["availability"] != first.json()["data"]["availability"]


async def test_a_session_starting_after_the_tag_makes_sessions_stale(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    headers = booking.headers("admin")
    first = await client.get("/get-sessions-optimized", headers=headers)
    tag = first.headers["etag"]
    conditional = {**headers, "If-None-Match": tag}
    assert (await client.get("/get-sessions-optimized", headers=conditional)).status_code == 304
    # A scheduled session's start passes (it leaves `upcoming`): the answer changed by time alone.
    upcoming = first.json()["data"]["summary"]["upcoming"]
    start = utcnow()
    async with db.read() as conn:
        row = (
            await conn.execute(
                text("SELECT id FROM sessions WHERE status = 'scheduled' ORDER BY start_time DESC")
            )
        ).first()
    assert row is not None
    await _without_a_write(
        db,
        update(Session)
        .where(Session.id == (row.id if isinstance(row.id, uuid.UUID) else uuid.UUID(row.id)))
        .values(start_time=start, end_time=start + timedelta(hours=1)),
    )
    r = await client.get("/get-sessions-optimized", headers=conditional)
    assert r.status_code == 200
    assert r.json()["data"]["summary"]["upcoming"] == upcoming - 1


async def test_openapi_declares_the_etag_and_the_304(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, _query in ROUTES:
        responses = paths[path]["get"]["responses"]
        assert "ETag" in responses["200"]["headers"], path
        assert "ETag" in responses["304"]["headers"], path
        assert "content" not in responses["304"], path
    # The POST form of the batch has no ETag (nothing to revalidate).
    assert "304" not in paths["/get-schedule-data-batch"]["post"]["responses"]


async def test_checks_read_before_a_write_the_page_saw_leave_no_stale_tag(
    client: httpx.AsyncClient, booking: Clinic, db: Database, settings: Settings
) -> None:
    """The week's calendars and authorization checks start alongside, before the page statement
    that reads the ETag's version (docs/DECISIONS.md, "The week's reads run alongside the page").
    Here they answer, then a write changes what the checks would answer, then the page reads: the
    tag must not stand for the newer version, or the board would keep the older conflicts behind
    a 304."""
    if db.dialect != "postgresql":
        pytest.skip("the checks run on a second connection on PostgreSQL only")
    await book(client, booking, hold_body(monday(1) + timedelta(days=1), "13:00", "14:00"))
    query = {
        **WEEK,
        "therapist_ids": T1,
        "include_availability": "true",
        "include_conflicts": "true",
    }
    headers = booking.headers("scheduler")

    def expired(answer: httpx.Response) -> list[Any]:
        conflicts = answer.json()["data"]["conflicts"]
        return [c for c in conflicts if c["type"] == "authorization_expired"]

    assert not expired(await client.get("/get-schedule-data-batch", params=query, headers=headers))

    url = make_url(settings.database_url).set(drivername="postgresql")
    locker = await asyncpg.connect(url.render_as_string(hide_password=False))
    watcher = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        # The page statement reads the clients (their names); the calendars and the checks do not.
        locking = locker.transaction()
        await locking.start()
        await locker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        asked = await watcher.fetchval("SELECT clock_timestamp()")
        week = asyncio.create_task(
            client.get("/get-schedule-data-batch", params=query, headers=headers)
        )
        async with asyncio.timeout(20):
            # The page waits for the lock; the calendars and then the checks have answered on
            # their own connection.
            while not await _page_waits_and_checks_answered(watcher, asked):
                assert not week.done(), (await week).text
                await asyncio.sleep(0.01)
            # A write that puts the session outside its authorization's dates.
            body = {"end_date": monday(1).isoformat()}
            changed = await client.patch(
                f"/admin/authorizations/{A1}", json=body, headers=booking.headers("admin")
            )
            assert changed.status_code == 200, changed.text
            await locking.rollback()
            first = await week
    finally:
        await locker.close()
        await watcher.close()
    assert first.status_code == 200
    assert not expired(first), "the checks answered before the write"

    again = await client.get(
        "/get-schedule-data-batch",
        params=query,
        headers={**headers, "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 200
    assert expired(again)


async def _page_waits_and_checks_answered(watcher: asyncpg.Connection, asked: Any) -> bool:
    """Whether a statement of this database waits for the lock on the clients and, since
    `asked`, the authorization checks' statement (the one that starts with the candidates) has
    ended on its connection."""
    waiting = await watcher.fetchval(
        "SELECT count(*) FROM pg_locks WHERE relation = 'clients'::regclass AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    answered = await watcher.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'idle' AND state_change > $1 AND query LIKE 'WITH candidates AS%'",
        asked,
    )
    return bool(waiting and answered)
