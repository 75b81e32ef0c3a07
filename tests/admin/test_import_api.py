from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin.helpers import audit_events
from tests.conftest import count_rows
from tests.fixtures import C1, CB, ORG_A, ORG_B, T1, TB, Clinic
from therapy_scheduler.infra.db import Database

NEW_T = "00000000-0000-0000-0000-00000000c201"
NEW_C = "00000000-0000-0000-0000-00000000c301"
NEW_S = "00000000-0000-0000-0000-00000000c601"


def _document() -> dict[str, Any]:
    return {
        "therapists": [
            {
                "id": NEW_T,
                "full_name": "Imogen Import",
                "credential": "RBT",
                "time_zone": "America/New_York",
                "availability": [{"weekday": "friday", "start": "09:00", "end": "13:00"}],
            }
        ],
        "clients": [{"id": NEW_C, "full_name": "Jules Import", "therapist_ids": [NEW_T, T1]}],
        "sessions": [
            {
                "id": NEW_S,
                "therapist_id": NEW_T,
                "client_id": NEW_C,
                "start_time": "2027-03-12T14:00:00Z",
                "end_time": "2027-03-12T15:00:00Z",
                "status": "completed",
            }
        ],
    }


async def test_admin_imports_into_their_organization(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    before = await client.get("/get-dropdown-data?types=therapists", headers=h)
    assert before.json()["cached"] is False
    r = await client.post("/admin/import", json=_document(), headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "dry_run": False,
        "counts": {
            "organizations": 0,
            "locations": 0,
            "therapists": 1,
            "clients": 1,
            "users": 0,
            "authorizations": 0,
            "sessions": 1,
        },
    }
    got = await client.get(f"/admin/therapists/{NEW_T}", headers=h)
    assert got.json()["data"]["full_name"] == "Imogen Import"
    caseload = await client.get(f"/admin/clients/{NEW_C}/caseload", headers=h)
    assert [t["id"] for t in caseload.json()["data"]["therapists"]] == [NEW_T, T1]
    after = await client.get("/get-dropdown-data?types=therapists", headers=h)
    assert after.json()["cached"] is False
    assert NEW_T in [t["id"] for t in after.json()["data"]["therapists"]]
    events = await audit_events(db)
    assert [(e["action"], e["entity_id"], e["details"]["counts"]["sessions"]) for e in events] == [
        ("import.apply", ORG_A, 1)
    ]


async def test_dry_run_changes_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post(
        "/admin/import?dry_run=true", json=_document(), headers=clinic.headers("admin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is True
    assert r.json()["counts"]["therapists"] == 1
    assert await count_rows(db, "therapists") == 5
    assert await count_rows(db, "sessions") == 10
    assert await audit_events(db) == []


@pytest.mark.parametrize("dry_run", ["true", "false"])
async def test_every_problem_is_reported_with_its_json_path(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, dry_run: str
) -> None:
    document = _document()
    document["therapists"].append(
        {"id": TB, "full_name": "Stolen Id", "credential": "RBT", "time_zone": "UTC"}
    )
    document["therapists"].append(
        {"full_name": "No Id", "credential": "RBT", "time_zone": "Mars/Base"}
    )
    document["clients"].append(
        {"id": CB, "organization_id": ORG_B, "full_name": "Other Org", "therapist_ids": [TB]}
    )
    document["sessions"][0]["client_id"] = C1
    document["sessions"].append({**document["sessions"][0], "id": NEW_C, "therapist_id": TB})
    document["organizations"] = [{"id": ORG_A, "name": "Renamed", "time_zone": "UTC"}]
    r = await client.post(
        f"/admin/import?dry_run={dry_run}", json=document, headers=clinic.headers("admin")
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "IMPORT_INVALID"
    assert body["details"]["problems"] == [
        "organizations[0]: organizations cannot be imported here",
        "therapists[1].id: id already in use",
        "therapists[2].id: Field required",
        'therapists[2].time_zone: unknown time zone "Mars/Base"',
        f"clients[1].organization_id: unknown organization {ORG_B}",
        "clients[1].therapist_ids[0]: unknown therapist " + TB,
        # TB is (wrongly) claimed by therapists[1], so sessions[1] may name it; their times overlap.
        "sessions[0]: overlaps sessions[1] of the same client",
    ]
    assert body["details"]["problem_count"] == 7
    assert body["error"] == body["details"]["problems"][0]
    assert await count_rows(db, "therapists") == 5
    assert await audit_events(db) == []


async def test_only_admins_import(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.post("/admin/import", json=_document(), headers=clinic.headers("scheduler"))
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    bad = await client.post(
        "/admin/import?dry_run=perhaps", json=_document(), headers=clinic.headers("admin")
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_ERROR")


async def test_other_organizations_ids_are_unknown_ids(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    document = {
        "sessions": [
            {
                "id": NEW_S,
                "therapist_id": TB,
                "client_id": C1,
                "start_time": "2027-04-01T14:00:00Z",
                "end_time": "2027-04-01T15:00:00Z",
            },
            {
                "id": "00000000-0000-0000-0000-00000000c602",
                "therapist_id": T1,
                "client_id": CB,
                "start_time": "2027-04-02T14:00:00Z",
                "end_time": "2027-04-02T15:00:00Z",
            },
        ],
        "users": [
            {"id": NEW_T, "email": "ADMIN@beta.example", "full_name": "Dup", "role": "scheduler"}
        ],
    }
    r = await client.post("/admin/import", json=document, headers=clinic.headers("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["details"]["problems"] == [
        "users[0].email: e-mail already used by another user",
        f"sessions[0].therapist_id: unknown therapist {TB}",
        f"sessions[1].client_id: unknown client {CB}",
    ]
    assert await count_rows(db, "sessions") == 10
