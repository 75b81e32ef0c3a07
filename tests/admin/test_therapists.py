from __future__ import annotations

import httpx
import pytest

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import ORG_A, T1, T3, T4, TB, U_ADMIN, Clinic
from therapy_scheduler.infra.db import Database

NEW = {
    "full_name": "Nora Nguyen",
    "credential": "BCBA",
    "email": "nora@alpha.example",
    "phone": "+1-555-0199",
    "specialties": ["early intervention"],
}


async def test_admin_creates_a_therapist_with_an_audit_event(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post(
        "/admin/therapists",
        json=NEW,
        headers={**clinic.headers("admin"), "X-Request-ID": "req-create-1"},
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    created_at = data.pop("created_at")
    new_id = data.pop("id")
    assert created_at.endswith("Z")
    assert data == {
        "full_name": "Nora Nguyen",
        "credential": "BCBA",
        "specialties": ["early intervention"],
        "time_zone": "America/New_York",  # the organization's zone by default
        "status": "active",
        "archived_at": None,
        "email": "nora@alpha.example",
        "phone": "+1-555-0199",
    }
    assert r.headers["cache-control"] == "no-store"
    assert await audit_events(db) == [
        {
            "organization_id": ORG_A,
            "actor_user_id": U_ADMIN,
            "action": "therapist.create",
            "entity_type": "therapist",
            "entity_id": new_id,
            "request_id": "req-create-1",
            "details": {},
        }
    ]
    got = await client.get(f"/admin/therapists/{new_id}", headers=clinic.headers("admin"))
    assert got.json()["data"]["full_name"] == "Nora Nguyen"


async def test_list_pages_by_name_with_cursors(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        url = "/admin/therapists?limit=1&include_archived=true"
        r = await client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [t["full_name"] for t in body["data"]]
        cursor = body["pagination"]["next_cursor"]
        assert body["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == ["Arlo Archived", "Ines Inactive", "Tara Quinn", "Theo Ramos"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["Ines Inactive", "Tara Quinn", "Theo Ramos"]),
        ("?status=active", ["Tara Quinn", "Theo Ramos"]),
        ("?q=QUI", ["Tara Quinn"]),
        ("?q=%25", []),  # % is a literal character, not a wildcard
        ("?include_archived=1&status=active", ["Arlo Archived", "Tara Quinn", "Theo Ramos"]),
    ],
)
async def test_list_filters(
    client: httpx.AsyncClient, clinic: Clinic, query: str, names: list[str]
) -> None:
    r = await client.get(f"/admin/therapists{query}", headers=clinic.headers("admin"))
    assert r.status_code == 200, r.text
    assert [t["full_name"] for t in r.json()["data"]] == names


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("?limit=0", "VALIDATION_ERROR", "limit"),
        ("?limit=101", "VALIDATION_ERROR", "limit"),
        ("?status=retired", "VALIDATION_ERROR", "status"),
        ("?include_archived=maybe", "VALIDATION_ERROR", "include_archived"),
        ("?page=2", "VALIDATION_ERROR", "page"),  # unknown parameters are refused
        ("?cursor=not-a-cursor", "INVALID_CURSOR", None),
    ],
)
async def test_list_refuses_bad_parameters(
    client: httpx.AsyncClient, clinic: Clinic, query: str, code: str, field: str | None
) -> None:
    r = await client.get(f"/admin/therapists{query}", headers=clinic.headers("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code
    if field:
        assert fields(r.json()) == [field]


async def test_cursor_of_another_list_is_refused(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    r = await client.get("/admin/clients?limit=1", headers=h)
    cursor = r.json()["pagination"]["next_cursor"]
    r = await client.get(f"/admin/therapists?cursor={cursor}", headers=h)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_CURSOR"


async def test_contact_data_only_for_admins(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.get(f"/admin/therapists/{T1}", headers=clinic.headers("scheduler"))
    assert r.status_code == 200
    data = r.json()["data"]
    assert "email" not in data
    assert "phone" not in data
    listed = await client.get("/admin/therapists", headers=clinic.headers("scheduler"))
    assert all("email" not in t and "phone" not in t for t in listed.json()["data"])


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        ("scheduler", "POST", "/admin/therapists", 403),
        ("scheduler", "PATCH", f"/admin/therapists/{T1}", 403),
        ("scheduler", "POST", f"/admin/therapists/{T1}/archive", 403),
        ("therapist", "GET", "/admin/therapists", 403),
        ("therapist", "GET", f"/admin/therapists/{T1}", 403),
        ("inactive", "GET", "/admin/therapists", 401),
        (None, "GET", "/admin/therapists", 401),
    ],
)
async def test_roles(
    client: httpx.AsyncClient, clinic: Clinic, who: str | None, method: str, path: str, status: int
) -> None:
    headers = clinic.headers(who) if who else {}
    body = NEW if method == "POST" and path.endswith("therapists") else {"status": "inactive"}
    r = await client.request(method, path, headers=headers, json=body if method != "GET" else None)
    assert r.status_code == status, r.text
    assert r.json()["code"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("POST", "/archive"), ("POST", "/restore")],
)
async def test_other_organizations_therapist_is_not_found(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, method: str, suffix: str
) -> None:
    body = {"full_name": "Hijacked"} if method == "PATCH" else None
    for therapist_id in (TB, "00000000-0000-0000-0000-00000000ffff"):
        r = await client.request(
            method,
            f"/admin/therapists/{therapist_id}{suffix}",
            headers=clinic.headers("admin"),
            json=body,
        )
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "NOT_FOUND"
        assert r.json()["error"] == "Therapist not found"
    assert await audit_events(db) == []


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.patch(
        f"/admin/therapists/{T1}",
        json={"status": "inactive", "phone": None, "time_zone": "America/Denver"},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["status"], data["phone"], data["time_zone"]) == (
        "inactive",
        None,
        "America/Denver",
    )
    assert (data["full_name"], data["email"], data["credential"]) == (
        "Tara Quinn",
        "tara@alpha.example",
        "BCBA",
    )
    events = await audit_events(db)
    assert [(e["action"], e["details"]) for e in events] == [
        ("therapist.update", {"fields": ["phone", "status", "time_zone"]})
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ""),
        ({"full_name": None}, "full_name"),
        ({"full_name": ""}, "full_name"),
        ({"email": "not-an-email"}, "email"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"credential": "x" * 17}, "credential"),
        ({"status": "retired"}, "status"),
        ({"archived_at": "2026-01-01T00:00:00Z"}, "archived_at"),
        ({"id": T3}, "id"),
    ],
)
async def test_patch_refuses_bad_input_and_changes_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, body: dict[str, object], field: str
) -> None:
    r = await client.patch(f"/admin/therapists/{T1}", json=body, headers=clinic.headers("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    if field:
        assert fields(r.json()) == [field]
    assert await audit_events(db) == []


async def test_create_requires_name_and_credential(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post(
        "/admin/therapists", json={"email": "x@y.example"}, headers=clinic.headers("admin")
    )
    assert r.status_code == 400
    assert sorted(fields(r.json())) == ["credential", "full_name"]
    assert await count_rows(db, "therapists") == 5


async def test_archive_and_restore(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    h = clinic.headers("admin")
    r = await client.post(f"/admin/therapists/{T1}/archive", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] is True
    assert body["data"]["archived_at"] is not None
    # T1's scheduled sessions S1, S2, S5, S7 and S9 are all in March 2027.
    assert body["upcoming_sessions"] == 5
    again = await client.post(f"/admin/therapists/{T1}/archive", headers=h)
    assert again.json()["changed"] is False
    assert again.json()["data"]["archived_at"] == body["data"]["archived_at"]
    listed = await client.get("/admin/therapists", headers=h)
    assert T1 not in [t["id"] for t in listed.json()["data"]]
    dropdown = await client.get("/get-dropdown-data?types=therapists", headers=h)
    assert T1 not in [t["id"] for t in dropdown.json()["data"]["therapists"]]
    restored = await client.post(f"/admin/therapists/{T4}/restore", headers=h)
    assert restored.json()["data"]["archived_at"] is None
    assert [e["action"] for e in await audit_events(db)] == [
        "therapist.archive",
        "therapist.restore",
    ]
    assert await count_rows(db, "therapists") == 5  # nothing is ever deleted


async def test_no_hard_delete(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.delete(f"/admin/therapists/{T1}", headers=clinic.headers("admin"))
    assert r.status_code == 405
    assert r.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_writes_invalidate_the_dropdown_cache(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    first = await client.get("/get-dropdown-data?types=therapists", headers=h)
    cached = await client.get("/get-dropdown-data?types=therapists", headers=h)
    assert (first.json()["cached"], cached.json()["cached"]) == (False, True)
    await client.patch(f"/admin/therapists/{T1}", json={"full_name": "Tara Q. Quinn"}, headers=h)
    fresh = await client.get("/get-dropdown-data?types=therapists", headers=h)
    assert fresh.json()["cached"] is False
    names = [t["full_name"] for t in fresh.json()["data"]["therapists"]]
    assert "Tara Q. Quinn" in names
