"""`Idempotency-Key` on the admin API's POST routes (docs/API.md), on SQLite and PostgreSQL: a retry with
the same key and body replays the first answer and creates nothing; another body → 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin.test_import_api import _document
from tests.conftest import count_rows
from tests.fixtures import C2, T2, Clinic
from therapy_scheduler.infra.db import Database

CASES: list[tuple[str, dict[str, Any], str, int, dict[str, Any]]] = [
    (
        "/admin/therapists",
        {"full_name": "Nora Nguyen", "credential": "BCBA"},
        "therapists",
        201,
        {"full_name": "Other Name", "credential": "BCBA"},
    ),
    ("/admin/clients", {"full_name": "Harper Hill"}, "clients", 201, {"full_name": "H. Hill"}),
    (
        "/admin/locations",
        {"name": "Lincoln Elementary", "location_type": "school"},
        "locations",
        201,
        {"name": "Lincoln Middle", "location_type": "school"},
    ),
    (
        "/admin/users",
        {"email": "new@alpha.example", "full_name": "New Person", "role": "scheduler"},
        "users",
        201,
        {"email": "other@alpha.example", "full_name": "New Person", "role": "scheduler"},
    ),
    (
        "/admin/authorizations",
        {
            "client_id": C2,
            "payer": "Keystone",
            "number": "A-3",
            "start_date": "2027-03-06",
            "end_date": "2027-09-05",
            "status": "approved",
            "services": [{"service_code": "97155", "approved_units": 24}],
        },
        "authorizations",
        201,
        {
            "client_id": C2,
            "payer": "Keystone",
            "number": "A-4",
            "start_date": "2027-03-06",
            "end_date": "2027-09-05",
            "status": "approved",
            "services": [{"service_code": "97155", "approved_units": 24}],
        },
    ),
    (
        f"/admin/therapists/{T2}/time-off",
        {"start": "2027-04-01T09:00", "end": "2027-04-01T10:00"},
        "time_off",
        201,
        {"start": "2027-04-02T09:00", "end": "2027-04-02T10:00"},
    ),
]


@pytest.mark.parametrize(("path", "body", "table", "status", "other"), CASES)
async def test_same_key_replays_and_creates_once(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    path: str,
    body: dict[str, Any],
    table: str,
    status: int,
    other: dict[str, Any],
) -> None:
    before = await count_rows(db, table)
    headers = {**clinic.headers("admin"), "Idempotency-Key": "admin-create-1"}
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == status, first.text
    assert "Idempotent-Replay" not in first.headers
    again = await client.post(path, json=body, headers=headers)
    assert again.status_code == status
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    assert await count_rows(db, table) == before + 1
    reused = await client.post(path, json=other, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert await count_rows(db, table) == before + 1
    # Without a key, each request is its own.
    plain = await client.post(path, json=other, headers=clinic.headers("admin"))
    assert plain.status_code == status, plain.text
    assert await count_rows(db, table) == before + 2


async def test_keys_are_per_user_and_refusals_replay(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    body = {"full_name": "Nora Nguyen", "credential": "BCBA"}
    refused = await client.post(
        "/admin/therapists",
        json=body,
        headers={**clinic.headers("scheduler"), "Idempotency-Key": "k-1"},
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    replay = await client.post(
        "/admin/therapists",
        json=body,
        headers={**clinic.headers("scheduler"), "Idempotency-Key": "k-1"},
    )
    assert replay.status_code == 403
    assert replay.headers["Idempotent-Replay"] == "true"
    # The admin's use of the same key is another scope.
    created = await client.post(
        "/admin/therapists",
        json=body,
        headers={**clinic.headers("admin"), "Idempotency-Key": "k-1"},
    )
    assert created.status_code == 201, created.text
    bad = await client.post(
        "/admin/therapists",
        json=body,
        headers={**clinic.headers("admin"), "Idempotency-Key": "bad key with spaces"},
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_ERROR")


async def test_import_with_a_key(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    headers = {**clinic.headers("admin"), "Idempotency-Key": "import-1"}
    first = await client.post("/admin/import", json=_document(), headers=headers)
    assert first.status_code == 200, first.text
    sessions = await count_rows(db, "sessions")
    again = await client.post("/admin/import", json=_document(), headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    assert await count_rows(db, "sessions") == sessions
    # dry_run is part of the request: the same key with dry_run=true is another request.
    dry = await client.post("/admin/import?dry_run=true", json=_document(), headers=headers)
    assert (dry.status_code, dry.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_body_orjson_cannot_encode_is_refused_cleanly(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """Found by schema fuzzing: an integer beyond 64 bits in a keyed import body crashed the request
    fingerprint with a 500; it is an import problem like any other value of the wrong shape."""
    headers = {
        **clinic.headers("admin"),
        "Idempotency-Key": "huge-1",
        "Content-Type": "application/json",
    }
    body = b'{"locations": [{"id": 73118975946180789901721600}]}'
    locations = await count_rows(db, "locations")
    r = await client.post("/admin/import", content=body, headers=headers)
    assert (r.status_code, r.json()["code"]) == (400, "IMPORT_INVALID")
    assert await count_rows(db, "locations") == locations
    again = await client.post("/admin/import", content=body, headers=headers)
    assert again.status_code == 400
    assert again.headers["Idempotent-Replay"] == "true"
