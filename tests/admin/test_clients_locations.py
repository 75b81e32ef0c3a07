from __future__ import annotations

import httpx
import pytest

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import C1, C3, CB, L1, L3, LB, T1, T2, T3, TB, Clinic
from therapy_scheduler.infra.db import Database


async def test_scheduler_creates_a_client_with_a_caseload(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post(
        "/admin/clients",
        json={
            "full_name": "Harper Hill",
            "email": "hill.family@example.com",
            "phone": "+1-555-0301",
            "date_of_birth": "2020-02-29",
            "therapist_ids": [T2, T1, T2],
        },
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    new_id = data["id"]
    # Schedulers may record a guardian's contact data but never see it (docs/API.md, roles).
    assert {k: data[k] for k in data if k not in ("id", "created_at")} == {
        "full_name": "Harper Hill",
        "date_of_birth": "2020-02-29",
        "status": "active",
        "archived_at": None,
    }
    admin_view = await client.get(f"/admin/clients/{new_id}", headers=clinic.headers("admin"))
    assert admin_view.json()["data"]["email"] == "hill.family@example.com"
    caseload = await client.get(
        f"/admin/clients/{new_id}/caseload", headers=clinic.headers("scheduler")
    )
    assert [t["id"] for t in caseload.json()["data"]["therapists"]] == [T1, T2]
    # The new client is on T1's caseload, so T1 now sees them in the dropdown.
    dropdown = await client.get(
        "/get-dropdown-data?types=clients", headers=clinic.headers("therapist")
    )
    assert new_id in [c["id"] for c in dropdown.json()["data"]["clients"]]
    assert [e["action"] for e in await audit_events(db)] == ["client.create"]


@pytest.mark.parametrize("therapist_id", [TB, "00000000-0000-0000-0000-00000000ffff"])
async def test_caseload_with_a_foreign_therapist_is_refused(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, therapist_id: str
) -> None:
    r = await client.post(
        "/admin/clients",
        json={"full_name": "Ivy Irwin", "therapist_ids": [T1, therapist_id]},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "NOT_FOUND"
    assert r.json()["details"] == {"field": "therapist_ids"}
    assert await count_rows(db, "clients") == 5
    put = await client.put(
        f"/admin/clients/{C1}/caseload",
        json={"therapist_ids": [therapist_id]},
        headers=clinic.headers("admin"),
    )
    assert put.status_code == 404
    assert await audit_events(db) == []


async def test_caseload_is_replaced(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.put(
        f"/admin/clients/{C3}/caseload",
        json={"therapist_ids": [T3]},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "client_id": C3,
        "therapists": [
            {
                "id": T3,
                "full_name": "Ines Inactive",
                "credential": "RBT",
                "status": "inactive",
                "archived_at": None,
            }
        ],
    }
    listed = await client.get(f"/admin/clients?therapist_id={T1}", headers=clinic.headers("admin"))
    assert [c["full_name"] for c in listed.json()["data"]] == ["Casey Cole", "Flynn Inactive"]
    events = await audit_events(db)
    assert [(e["action"], e["details"]) for e in events] == [
        ("client.caseload.replace", {"therapist_ids": [T3]})
    ]


async def test_therapist_cannot_manage_clients(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("therapist")
    for method, path in (
        ("GET", "/admin/clients"),
        ("GET", f"/admin/clients/{C1}"),
        ("GET", f"/admin/clients/{C1}/caseload"),
        ("POST", f"/admin/clients/{C1}/archive"),
    ):
        r = await client.request(method, path, headers=h)
        assert r.status_code == 403, (method, path)
        assert r.json()["code"] == "FORBIDDEN"


async def test_other_organizations_client_is_not_found(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    assert (await client.get(f"/admin/clients/{CB}", headers=h)).status_code == 404
    assert (await client.get(f"/admin/clients/{CB}/caseload", headers=h)).status_code == 404
    r = await client.patch(f"/admin/clients/{CB}", json={"status": "inactive"}, headers=h)
    assert r.status_code == 404
    # And admins of the other organization do not see ours either.
    other = await client.get("/admin/clients", headers=clinic.headers("admin_b"))
    assert [c["id"] for c in other.json()["data"]] == [CB]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": "A", "date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"full_name": "A", "date_of_birth": "05/01/2019"}, "date_of_birth"),
        ({"full_name": "A", "therapist_ids": ["nope"]}, "therapist_ids.0"),
        ({"full_name": "A", "phone": "1" * 41}, "phone"),
        ({"full_name": "A" * 201}, "full_name"),
    ],
)
async def test_client_bad_input(
    client: httpx.AsyncClient, clinic: Clinic, body: dict[str, object], field: str
) -> None:
    r = await client.post("/admin/clients", json=body, headers=clinic.headers("admin"))
    assert r.status_code == 400, r.text
    assert fields(r.json()) == [field]


async def test_archive_client_counts_upcoming_sessions(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.post(f"/admin/clients/{C1}/archive", headers=clinic.headers("scheduler"))
    assert r.status_code == 200
    assert (r.json()["changed"], r.json()["upcoming_sessions"]) == (True, 4)
    listed = await client.get(
        "/admin/clients?include_archived=true&q=casey", headers=clinic.headers("admin")
    )
    assert [c["archived_at"] is not None for c in listed.json()["data"]] == [True]


async def test_locations_lifecycle(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    h = clinic.headers("scheduler")
    r = await client.post(
        "/admin/locations",
        json={"name": "Lincoln Elementary", "location_type": "school"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert {k: new[k] for k in ("name", "location_type", "is_active")} == {
        "name": "Lincoln Elementary",
        "location_type": "school",
        "is_active": True,
    }
    listed = await client.get("/admin/locations", headers=h)
    assert [loc["name"] for loc in listed.json()["data"]] == [
        "Lincoln Elementary",
        "Main clinic",
        "Telehealth",
    ]
    schools = await client.get(
        "/admin/locations?location_type=school&include_inactive=true", headers=h
    )
    assert [loc["id"] for loc in schools.json()["data"]] == [new["id"]]
    archived = await client.post(f"/admin/locations/{L1}/archive", headers=h)
    assert archived.json()["data"]["is_active"] is False
    restored = await client.post(f"/admin/locations/{L3}/restore", headers=h)
    assert restored.json()["data"]["is_active"] is True
    patched = await client.patch(
        f"/admin/locations/{L3}", json={"location_type": "community"}, headers=h
    )
    assert patched.json()["data"]["location_type"] == "community"
    bad = await client.patch(f"/admin/locations/{L3}", json={"location_type": "moon"}, headers=h)
    assert bad.status_code == 400
    assert fields(bad.json()) == ["location_type"]
    foreign = await client.post(f"/admin/locations/{LB}/archive", headers=h)
    assert foreign.status_code == 404
    assert [e["action"] for e in await audit_events(db)] == [
        "location.create",
        "location.archive",
        "location.restore",
        "location.update",
    ]
    dropdown = await client.get("/get-dropdown-data?types=locations", headers=h)
    assert [loc["name"] for loc in dropdown.json()["data"]["locations"]] == [
        "Closed clinic",
        "Lincoln Elementary",
        "Telehealth",
    ]
