"""Idempotency-Key on the booking POSTs (docs/API.md, conventions), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, update

from tests.booking.conftest import hold_body, hold_ok, monday, table_count
from tests.fixtures import C3, ORG_A, T2, U_SCHED, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import fingerprint
from therapy_scheduler.models import IdempotencyRecord


async def post(
    client: httpx.AsyncClient,
    clinic: Clinic,
    path: str,
    body: dict[str, Any],
    key: str,
    who: str = "scheduler",
) -> httpx.Response:
    headers = {**clinic.headers(who), "Idempotency-Key": key}
    return await client.post(path, json=body, headers=headers)


async def test_same_key_same_body_replays(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1))
    first = await post(client, booking, "/sessions/hold", body, "k-1")
    assert first.status_code == 200, first.text
    assert "idempotent-replay" not in first.headers
    # Same body with its keys in another order is the same request.
    again = await post(client, booking, "/sessions/hold", dict(reversed(body.items())), "k-1")
    assert again.status_code == 200
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == first.json()
    assert await table_count(db, "holds") == 1


async def test_same_key_other_body_is_refused(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    await post(client, booking, "/sessions/hold", hold_body(monday(1)), "k-2")
    r = await post(client, booking, "/sessions/hold", hold_body(monday(2)), "k-2")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await table_count(db, "holds") == 1


async def test_keys_are_scoped_per_user_and_endpoint(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1))
    held = (await post(client, booking, "/sessions/hold", body, "shared")).json()
    # Another user with the same key really runs (and meets the hold it made).
    r = await post(client, booking, "/sessions/hold", body, "shared", "admin")
    assert (r.status_code, r.json()["code"]) == (409, "THERAPIST_HOLD_CONFLICT")
    assert "idempotent-replay" not in r.headers
    # Another endpoint with the same key and user really runs too.
    confirm = {
        "hold_key": held["hold_key"],
        "session": {
            "start_time": held["occurrences"][0]["start_time"],
            "end_time": held["occurrences"][0]["end_time"],
        },
    }
    r = await post(client, booking, "/sessions/confirm", confirm, "shared")
    assert r.status_code == 200, r.text
    again = await post(client, booking, "/sessions/confirm", confirm, "shared")
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == r.json()
    cancel = {"session_id": r.json()["session"]["id"]}
    first = await post(client, booking, "/sessions/cancel", cancel, "shared")
    second = await post(client, booking, "/sessions/cancel", cancel, "shared")
    assert first.json()["already_cancelled"] is False
    assert second.json() == first.json()
    assert second.headers["idempotent-replay"] == "true"


async def test_an_answered_conflict_is_replayed(client: httpx.AsyncClient, booking: Clinic) -> None:
    day = monday(1)
    blocking = await hold_ok(client, booking, hold_body(day))
    body = hold_body(day, client=C3)
    first = await post(client, booking, "/sessions/hold", body, "k-409")
    assert (first.status_code, first.json()["code"]) == (409, "THERAPIST_HOLD_CONFLICT")
    await client.delete(
        f"/sessions/hold/{blocking['hold_key']}", headers=booking.headers("scheduler")
    )
    again = await post(client, booking, "/sessions/hold", body, "k-409")
    assert again.status_code == 409
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == first.json()


async def _record(db: Database, key: str, body: dict[str, Any], *, age: timedelta) -> None:
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(
            insert(IdempotencyRecord).values(
                id=uuid.uuid4(),
                organization_id=uuid.UUID(ORG_A),
                user_id=uuid.UUID(U_SCHED),
                endpoint="POST /sessions/hold",
                key=key,
                request_hash=fingerprint(body),
                state="in_progress",
                created_at=now - age,
                expires_at=now - age + timedelta(hours=24),
            )
        )


async def test_in_progress_then_stale(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1))
    await _record(db, "busy", body, age=timedelta(seconds=5))
    r = await post(client, booking, "/sessions/hold", body, "busy")
    assert (r.status_code, r.json()["code"]) == (409, "IDEMPOTENCY_IN_PROGRESS")
    assert r.headers["retry-after"] == "1"
    assert await table_count(db, "holds") == 0
    # A claim nobody finished within a minute is abandoned (its process died): taken over.
    async with db.write() as conn:
        await conn.execute(
            update(IdempotencyRecord).values(created_at=datetime.now(UTC) - timedelta(seconds=90))
        )
    r = await post(client, booking, "/sessions/hold", body, "busy")
    assert r.status_code == 200, r.text
    assert await table_count(db, "holds") == 1


async def test_expired_records_are_forgotten(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1))
    await _record(db, "old", hold_body(monday(3)), age=timedelta(hours=25))
    r = await post(client, booking, "/sessions/hold", body, "old")
    assert r.status_code == 200, r.text
    assert await table_count(db, "idempotency_records", "state = 'completed'") == 1


async def test_invalid_keys(client: httpx.AsyncClient, booking: Clinic) -> None:
    for key in ("x" * 256, "has space"):
        r = await post(client, booking, "/sessions/hold", hold_body(monday(1)), key)
        assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR"), key


async def test_concurrent_requests_with_one_key_run_once(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    body = hold_body(monday(1), session={"therapist_id": T2}, time_zone="America/Chicago")
    body["session"]["start_time"] = f"{monday(1)}T09:00:00"
    body["session"]["end_time"] = f"{monday(1)}T10:00:00"
    results = await asyncio.gather(
        *(post(client, booking, "/sessions/hold", body, "race") for _ in range(6))
    )
    statuses = sorted((r.status_code, r.headers.get("idempotent-replay", "no")) for r in results)
    assert statuses.count((200, "no")) == 1
    assert all(s in ((200, "no"), (200, "true"), (409, "no")) for s in statuses)
    assert all(
        r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in results if r.status_code == 409
    )
    assert await table_count(db, "holds") == 1


async def test_an_inactive_caller_claims_no_key(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    """The caller is read with the claim of the key (docs/DECISIONS.md): an inactive user gets 401
    and leaves no record behind, and the key stays free for its owner."""
    held = await hold_ok(client, booking, hold_body(monday(2)))
    confirm = {
        "hold_key": held["hold_key"],
        "session": {
            "start_time": held["occurrences"][0]["start_time"],
            "end_time": held["occurrences"][0]["end_time"],
        },
    }
    for path, body in (("/sessions/hold", hold_body(monday(1))), ("/sessions/confirm", confirm)):
        r = await post(client, booking, path, body, "k-off", who="inactive")
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "UNAUTHORIZED"
    assert await table_count(db, "idempotency_records") == 0
    assert await table_count(db, "holds") == 1
    assert (await post(client, booking, "/sessions/confirm", confirm, "k-off")).status_code == 200
    assert await table_count(db, "idempotency_records", "state = 'completed'") == 1
