"""GET /admin/audit-events: admins only, tenant-scoped, filters, keyset paging; append-only table;
phi.read events for the read endpoints."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.conftest import make_settings
from tests.fixtures import C1, C2, C3, CB, ORG_A, ORG_B, U_ADMIN, U_B, U_SCHED, U_T1, Clinic
from therapy_scheduler.infra.audit_log import AuditEntry, append_entries, record
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent

URL = "/admin/audit-events"
BASE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _events(client: httpx.AsyncClient, clinic: Clinic, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, params=params, headers=clinic.headers("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _all_pages(
    client: httpx.AsyncClient, clinic: Clinic, **params: Any
) -> tuple[list[int], int]:
    ids: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        body = await _events(client, clinic, **query)
        pages += 1
        ids += [e["id"] for e in body["data"]["events"]]
        cursor = body["data"]["pagination"]["next_cursor"]
        assert body["data"]["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            return ids, pages


def _entry(
    n: int,
    *,
    org: str = ORG_A,
    actor: str | None = U_ADMIN,
    action: str = "session.cancel",
    entity_type: str = "session",
    clients: tuple[str, ...] = (),
    minutes: int | None = None,
) -> AuditEntry:
    return AuditEntry(
        organization_id=uuid.UUID(org),
        actor_user_id=uuid.UUID(actor) if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=f"entity-{n}",
        request_id=f"req-{n}",
        occurred_at=BASE + timedelta(minutes=n if minutes is None else minutes),
        details={"n": n},
        client_ids=tuple(uuid.UUID(c) for c in clients),
    )


async def _seed(db: Database) -> list[tuple[int, AuditEntry]]:
    """30 events of org A (several sharing a timestamp) and 3 of org B; returns (id, entry) of org A
    in insertion order."""
    entries: list[AuditEntry] = []
    for n in range(30):
        entries.append(
            _entry(
                n,
                # Events 10..14 share one instant, so paging must break ties on the id.
                minutes=10 if 10 <= n < 15 else n,
                actor=(U_ADMIN, U_SCHED, U_T1)[n % 3],
                action=("session.cancel", "phi.read", "calendar_feed.create")[n % 3],
                entity_type=("session", "sessions", "calendar_feed")[n % 3],
                clients=((C1,), (C1, C2), (C3,), ())[n % 4],
            )
        )
    foreign = [_entry(100 + n, org=ORG_B, actor=U_B, clients=(CB,)) for n in range(3)]
    async with db.write() as conn:
        await append_entries(conn, entries + foreign)
        rows = (
            await conn.execute(
                text("SELECT id, entity_id FROM audit_events WHERE request_id LIKE 'req-%'")
            )
        ).all()
    by_entity = {entity_id: event_id for event_id, entity_id in rows}
    return [(by_entity[e.entity_id], e) for e in entries]


def _newest_first(seeded: list[tuple[int, AuditEntry]]) -> list[int]:
    return [i for i, _ in sorted(seeded, key=lambda p: (p[1].occurred_at, p[0]), reverse=True)]


@pytest.mark.parametrize("who", ["scheduler", "therapist", "therapist2"])
async def test_only_admins_read_the_audit_log(
    client: httpx.AsyncClient, clinic: Clinic, who: str
) -> None:
    response = await client.get(URL, headers=clinic.headers(who))
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "FORBIDDEN"
    assert body["details"] == {"capability": "read_audit_log"}
    assert (await client.get(URL)).status_code == 401
    assert (await client.get(URL, headers=clinic.headers("inactive"))).status_code == 401


async def test_paging_without_overlap_or_skip(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    seeded = await _seed(db)
    ids, pages = await _all_pages(client, clinic, limit=4)
    assert ids == _newest_first(seeded)
    assert pages == 8  # 30 events, 4 per page
    # The tie of events 10..14 (same instant) is ordered by id, newest id first.
    tied = [i for i, e in seeded if e.occurred_at == BASE + timedelta(minutes=10)]
    positions = [ids.index(i) for i in sorted(tied, reverse=True)]
    assert positions == sorted(positions)


async def test_other_organizations_events_are_invisible(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    seeded = await _seed(db)
    ids, _ = await _all_pages(client, clinic, limit=200)
    assert set(ids) == {i for i, _ in seeded}
    body = await _events(client, clinic, client_id=CB)
    assert body["data"]["events"] == []
    body = await _events(client, clinic, actor_user_id=U_B)
    assert body["data"]["events"] == []
    response = await client.get(URL, params={"limit": 200}, headers=clinic.headers("admin_b"))
    events = response.json()["data"]["events"]
    assert [e["entity_id"] for e in events] == ["entity-102", "entity-101", "entity-100"]
    assert {e["actor_user_id"] for e in events} == {U_B}


async def test_filters(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    seeded = await _seed(db)

    def expect(pred: Any) -> list[int]:
        return _newest_first([(i, e) for i, e in seeded if pred(e)])

    ids, _ = await _all_pages(client, clinic, actor_user_id=U_SCHED, limit=3)
    assert ids == expect(lambda e: e.actor_user_id == uuid.UUID(U_SCHED))
    ids, _ = await _all_pages(client, clinic, action="phi.read", limit=3)
    assert ids == expect(lambda e: e.action == "phi.read")
    ids, _ = await _all_pages(client, clinic, entity_type="calendar_feed", limit=3)
    assert ids == expect(lambda e: e.entity_type == "calendar_feed")
    ids, _ = await _all_pages(client, clinic, entity_type="session", entity_id="entity-9")
    assert ids == expect(lambda e: e.entity_id == "entity-9")
    assert len(ids) == 1
    ids, _ = await _all_pages(client, clinic, client_id=C1, limit=3)
    assert ids == expect(lambda e: uuid.UUID(C1) in e.client_ids)
    assert len(ids) == 16
    ids, _ = await _all_pages(client, clinic, client_id=C2, action="phi.read", limit=2)
    assert ids == expect(lambda e: uuid.UUID(C2) in e.client_ids and e.action == "phi.read")
    since, until = BASE + timedelta(minutes=10), BASE + timedelta(minutes=20)
    ids, _ = await _all_pages(
        client,
        clinic,
        since="2026-06-01T12:10:00Z",
        until="2026-06-01T08:20:00-04:00",
        limit=4,
    )
    assert ids == expect(lambda e: since <= e.occurred_at < until)
    assert len(ids) == 10  # minutes 10 (x6: events 10..14 and 10), 15..19
    ids, _ = await _all_pages(client, clinic, client_id=C3, since="2026-06-01T12:10:00Z")
    assert ids == expect(lambda e: uuid.UUID(C3) in e.client_ids and e.occurred_at >= since)


async def test_event_shape(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    seeded = await _seed(db)
    body = await _events(client, clinic, entity_type="sessions", entity_id="entity-1")
    event_id = next(i for i, e in seeded if e.entity_id == "entity-1")
    assert body == {
        "success": True,
        "data": {
            "events": [
                {
                    "id": event_id,
                    "occurred_at": "2026-06-01T12:01:00Z",
                    "actor_user_id": U_SCHED,
                    "action": "phi.read",
                    "entity_type": "sessions",
                    "entity_id": "entity-1",
                    "request_id": "req-1",
                    "client_ids": sorted([C1, C2]),
                    "details": {"n": 1},
                }
            ],
            "pagination": {"limit": 50, "has_more": False, "next_cursor": None},
        },
        "filters": {
            "actor_user_id": None,
            "client_id": None,
            "entity_type": "sessions",
            "entity_id": "entity-1",
            "action": None,
            "since": None,
            "until": None,
            "limit": 50,
            "cursor": None,
        },
    }


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "not-a-cursor"}, "INVALID_CURSOR"),
        ({"cursor": "eyJ0IjoiMjAyNi0wNi0wMVQxMjowMDowMFoiLCJpIjoieCJ9"}, "INVALID_CURSOR"),
        # ["audit_events", "2026-06-01T12:00:00Z", "x"], the same with `true` as the id, and a
        # position of the sessions list with an integer id.
        (
            {"cursor": "WyJhdWRpdF9ldmVudHMiLCIyMDI2LTA2LTAxVDEyOjAwOjAwWiIsIngiXQ"},
            "INVALID_CURSOR",
        ),
        (
            {"cursor": "WyJhdWRpdF9ldmVudHMiLCIyMDI2LTA2LTAxVDEyOjAwOjAwWiIsdHJ1ZV0"},
            "INVALID_CURSOR",
        ),
        ({"cursor": "WyJzZXNzaW9ucyIsIjIwMjYtMDYtMDFUMTI6MDA6MDBaIiw3XQ"}, "INVALID_CURSOR"),
        ({"limit": "0"}, "VALIDATION_ERROR"),
        ({"limit": "201"}, "VALIDATION_ERROR"),
        ({"client_id": "C1"}, "VALIDATION_ERROR"),
        ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "VALIDATION_ERROR"),
        ({"since": "2026-06-01T00:00:00"}, "VALIDATION_ERROR"),
        ({"entity_id": "x"}, "VALIDATION_ERROR"),
    ],
)
async def test_bad_input(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, str], code: str
) -> None:
    response = await client.get(URL, params=params, headers=clinic.headers("admin"))
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'tampered'",
        "UPDATE audit_events SET client_ids = client_ids",
        "DELETE FROM audit_events",
    ],
)
async def test_audit_events_are_append_only(db: Database, clinic: Clinic, statement: str) -> None:
    async with db.write() as conn:
        await append_entries(conn, [_entry(1, clients=(C1, C2))])
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.write() as conn:
            await conn.execute(text(statement))
    async with db.read() as conn:
        [(action, clients)] = (
            await conn.execute(select(AuditEvent.action, AuditEvent.client_ids))
        ).all()
    assert (action, sorted(clients)) == ("session.cancel", sorted([C1, C2]))


async def _stored_clients(db: Database) -> list[list[str]]:
    """Each audit event's client ids (canonical text, sorted), in the order of the events' ids."""
    async with db.read() as conn:
        rows = await conn.execute(select(AuditEvent.client_ids).order_by(AuditEvent.id))
        return [sorted(clients) for clients in rows.scalars()]


async def _sqlite_client_index(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT organization_id, client_id, occurred_at, audit_event_id "
                "FROM audit_event_clients ORDER BY audit_event_id, client_id"
            )
        )
        return [tuple(row) for row in rows]


async def test_sqlite_indexes_each_event_under_its_clients(db: Database, clinic: Clinic) -> None:
    """SQLite's index of the events' clients (migration 0017) is a table that a trigger fills from
    each new event: one row per client of the event, with the event's organization and time, and
    nothing for an event of no client. Like the events, it is append-only."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL indexes the column itself (GIN)")
    async with db.write() as conn:
        await append_entries(
            conn,
            [
                _entry(1, clients=(C1, C2)),
                _entry(2),
                _entry(3, org=ORG_B, actor=U_B, clients=(CB,)),
            ],
        )
        events = (
            await conn.execute(
                text("SELECT entity_id, id, organization_id, occurred_at FROM audit_events")
            )
        ).all()
    of = {entity_id: (event_id, org, at) for entity_id, event_id, org, at in events}
    expected = [
        (of[entity][1], client, of[entity][2], of[entity][0])
        for entity, clients in (("entity-1", (C1, C2)), ("entity-3", (CB,)))
        for client in sorted(clients)
    ]
    assert await _sqlite_client_index(db) == expected
    for statement in (
        "UPDATE audit_event_clients SET client_id = 'x'",
        "DELETE FROM audit_event_clients",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.write() as conn:
                await conn.execute(text(statement))
    assert await _sqlite_client_index(db) == expected


async def test_therapist_viewing_sessions_is_recorded(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    response = await client.get(
        "/get-sessions-optimized",
        headers={**clinic.headers("therapist"), "X-Request-ID": "read-by-tara"},
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["sessions"]) == 6
    body = await _events(client, clinic, actor_user_id=U_T1)
    [event] = body["data"]["events"]
    assert event["action"] == "phi.read"
    assert event["entity_type"] == "sessions"
    assert event["entity_id"] == "get-sessions-optimized"
    assert event["request_id"] == "read-by-tara"
    assert event["client_ids"] == sorted([C1, C3])
    assert event["details"] == {
        "endpoint": "get-sessions-optimized",
        "session_count": 6,
        "client_count": 2,
    }
    # The client filter finds the read for either client, and not for a client it did not show.
    assert [e["id"] for e in (await _events(client, clinic, client_id=C3))["data"]["events"]] == [
        event["id"]
    ]
    assert (await _events(client, clinic, client_id=C2))["data"]["events"] == []


async def test_schedule_batch_reads_are_recorded(client: httpx.AsyncClient, clinic: Clinic) -> None:
    params = {"start_date": "2027-03-09", "end_date": "2027-03-10"}
    for method in ("GET", "POST"):
        if method == "GET":
            response = await client.get(
                "/get-schedule-data-batch", params=params, headers=clinic.headers("scheduler")
            )
        else:
            response = await client.post(
                "/get-schedule-data-batch", json=params, headers=clinic.headers("scheduler")
            )
        assert response.status_code == 200
    # A read that showed no session records nothing.
    empty = await client.get(
        "/get-schedule-data-batch",
        params={"start_date": "2030-01-01", "end_date": "2030-01-02"},
        headers=clinic.headers("scheduler"),
    )
    assert empty.json()["data"]["sessions"] == []
    body = await _events(client, clinic, actor_user_id=U_SCHED, action="phi.read")
    events = body["data"]["events"]
    assert len(events) == 2
    for event in events:
        assert event["entity_id"] == "get-schedule-data-batch"
        assert event["client_ids"] == sorted([C1, C2])
        assert event["details"] == {
            "endpoint": "get-schedule-data-batch",
            "session_count": 3,
            "client_count": 2,
        }


async def test_schedule_batch_reads_record_the_clients_of_conflicts_beyond_the_page(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    """The conflicts cover the whole range, not the page: a page of one session (S1, client C1)
    also shows authorization conflicts naming C2 and C3, so the read of all three is recorded."""
    response = await client.get(
        "/get-schedule-data-batch",
        params={
            "start_date": "2027-03-08",
            "end_date": "2027-03-20",
            "include_conflicts": "true",
            "batch_size": 1,
        },
        headers=clinic.headers("scheduler"),
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert {s["client_id"] for s in data["sessions"]} == {C1}
    assert {c.get("client_id") for c in data["conflicts"]} >= {C2, C3}
    body = await _events(client, clinic, actor_user_id=U_SCHED, action="phi.read")
    [event] = body["data"]["events"]
    assert event["client_ids"] == sorted([C1, C2, C3])
    assert event["details"] == {
        "endpoint": "get-schedule-data-batch",
        "session_count": 1,
        "client_count": 3,
    }


async def test_shutdown_flushes_buffered_reads(
    app_and_client: tuple[Any, httpx.AsyncClient], clinic: Clinic, db: Database
) -> None:
    app, client = app_and_client
    for _ in range(3):
        response = await client.get("/get-sessions-optimized", headers=clinic.headers("admin"))
        assert response.status_code == 200
    await app.state.audit_writer.close()
    assert app.state.audit_writer.pending == 0
    async with db.read() as conn:
        rows = (
            await conn.execute(
                text("SELECT action, entity_id FROM audit_events ORDER BY id"),
            )
        ).all()
    assert [tuple(r) for r in rows] == [("phi.read", "get-sessions-optimized")] * 3
    assert await _stored_clients(db) == [sorted([C1, C2, C3])] * 3


async def test_record_indexes_the_clients_of_a_write(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    async with db.write() as conn:
        await record(
            conn,
            organization_id=uuid.UUID(ORG_A),
            actor_user_id=uuid.UUID(U_SCHED),
            action="client.update",
            entity_type="client",
            entity_id=uuid.UUID(C2),
            request_id="w-1",
        )
        await record(
            conn,
            organization_id=uuid.UUID(ORG_A),
            actor_user_id=uuid.UUID(U_SCHED),
            action="session.cancel",
            entity_type="session",
            entity_id="some-session",
            request_id="w-2",
            details={"late_cancellation": False},
            client_ids=[uuid.UUID(C2), uuid.UUID(C2)],
        )
    events = (await _events(client, clinic, client_id=C2))["data"]["events"]
    assert [(e["request_id"], e["client_ids"]) for e in events] == [("w-2", [C2]), ("w-1", [C2])]


async def test_buffered_reads_survive_a_failed_flush(clinic: Clinic, db: Database) -> None:
    broken = Database.from_settings(make_settings("sqlite+aiosqlite:////nonexistent-dir/audit.db"))
    writer = AuditWriter(broken)
    writer.add(_entry(1, clients=(C1,)))
    with pytest.raises(OperationalError):
        await writer.flush()
    assert writer.pending == 1
    await broken.dispose()
    # The same entries are written once the database is reachable again.
    writer._database = db
    await writer.close()
    assert writer.pending == 0
    assert await _stored_clients(db) == [[C1]]


async def test_shutdown_while_a_flush_runs_writes_every_read_once(
    clinic: Clinic, db: Database
) -> None:
    """Shutdown may come while the background task is in the middle of a batch: the batch must
    finish (not be cancelled half-committed, which lost or doubled events and left SQLite's write
    lock held), and what is left is written by the final flush."""
    writer = AuditWriter(db, max_batch=5)
    for n in range(1000):
        writer.add(_entry(n, clients=(C1,)))
    # Shut down as soon as the background task has committed its first batch: it is then in the
    # middle of the 200 that remain.
    for _ in range(10_000):
        if writer.pending < 1000:
            break
        await asyncio.sleep(0.001)
    await writer.close()
    assert writer.pending == 0
    async with db.read() as conn:
        ids = (await conn.execute(text("SELECT entity_id FROM audit_events"))).scalars().all()
    assert sorted(ids) == sorted(f"entity-{n}" for n in range(1000))
    assert await _stored_clients(db) == [[C1]] * 1000


async def test_read_log_stores_client_ids_given_as_text_as_it_stores_uuids(
    clinic: Clinic, db: Database
) -> None:
    """The read endpoints pass the client ids shown as the text the database rendered: they are
    stored exactly as the same ids passed as UUIDs, whatever their spelling; a bad id still raises."""
    from types import SimpleNamespace

    from therapy_scheduler.audit.phi import note_phi_read_of

    writer = AuditWriter(db, flush_seconds=30)
    request: Any = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(audit_writer=writer)),
        state=SimpleNamespace(request_id="as-text"),
    )
    caller: Any = SimpleNamespace(organization_id=uuid.UUID(ORG_A), user_id=uuid.UUID(U_ADMIN))
    shown: list[uuid.UUID | str] = [C1, C2.upper(), C1, "{" + C3 + "}", uuid.UUID(C2)]
    note_phi_read_of(request, caller, endpoint="x", session_count=5, client_ids=shown)
    note_phi_read_of(
        request,
        caller,
        endpoint="x",
        session_count=5,
        client_ids=[uuid.UUID(C1), uuid.UUID(C2), uuid.UUID(C3)],
    )
    with pytest.raises(ValueError, match="badly formed"):
        note_phi_read_of(request, caller, endpoint="x", session_count=1, client_ids=["not-an-id"])
    await writer.close()
    assert await _stored_clients(db) == [sorted([C1, C2, C3])] * 2
