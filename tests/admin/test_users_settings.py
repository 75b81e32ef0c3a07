from __future__ import annotations

import uuid

import httpx
import pytest

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import T1, T3, TB, U_ADMIN, U_B, U_OFF, U_SCHED, U_T1, Clinic
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.infra.db import Database


async def test_admin_creates_a_therapist_user(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post(
        "/admin/users",
        json={
            "email": "Ines@Alpha.Example",
            "full_name": "Ines I.",
            "role": "therapist",
            "therapist_id": T3,
        },
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert {k: data[k] for k in ("email", "full_name", "role", "therapist_id", "is_active")} == {
        "email": "ines@alpha.example",
        "full_name": "Ines I.",
        "role": "therapist",
        "therapist_id": T3,
        "is_active": True,
    }
    # The new user can sign in at once and manage their own calendar.
    token = mint_token(clinic.settings, uuid.UUID(data["id"]))
    own = await client.get(
        f"/admin/therapists/{T3}/availability", headers={"Authorization": f"Bearer {token}"}
    )
    assert own.status_code == 200
    assert [e["action"] for e in await audit_events(db)] == ["user.create"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "SCHED@alpha.example"}, 409, "EMAIL_TAKEN"),
        ({"email": "admin@beta.example"}, 409, "EMAIL_TAKEN"),  # e-mails are unique service-wide
        ({"role": "therapist"}, 400, "VALIDATION_ERROR"),
        ({"role": "therapist", "therapist_id": T1}, 409, "THERAPIST_ALREADY_LINKED"),
        ({"role": "therapist", "therapist_id": TB}, 404, "NOT_FOUND"),
        ({"role": "owner"}, 400, "VALIDATION_ERROR"),
        ({"email": "no-at-sign"}, 400, "VALIDATION_ERROR"),
    ],
)
async def test_create_user_conflicts(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    base = {"email": "new@alpha.example", "full_name": "New Person", "role": "scheduler"}
    r = await client.post("/admin/users", json={**base, **body}, headers=clinic.headers("admin"))
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert "beta" not in r.json()["error"]
    assert await count_rows(db, "users") == 6
    assert await audit_events(db) == []


async def test_deactivated_user_loses_access_and_can_be_restored(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    r = await client.post(f"/admin/users/{U_SCHED}/archive", headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["changed"], r.json()["data"]["is_active"]) == (True, False)
    refused = await client.get("/admin/clients", headers=clinic.headers("scheduler"))
    assert refused.status_code == 401
    listed = await client.get("/admin/users", headers=h)
    assert U_SCHED not in [u["id"] for u in listed.json()["data"]]
    everyone = await client.get("/admin/users?include_inactive=true&q=SOL", headers=h)
    assert [u["id"] for u in everyone.json()["data"]] == [U_SCHED]
    restored = await client.post(f"/admin/users/{U_SCHED}/restore", headers=h)
    assert restored.json()["data"]["is_active"] is True
    assert (
        await client.get("/admin/clients", headers=clinic.headers("scheduler"))
    ).status_code == 200
    assert await count_rows(db, "users") == 6


async def test_admin_cannot_lock_themselves_out(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    r = await client.post(f"/admin/users/{U_ADMIN}/archive", headers=h)
    assert (r.status_code, r.json()["code"]) == (409, "SELF_LOCKOUT")
    demote = await client.patch(f"/admin/users/{U_ADMIN}", json={"role": "scheduler"}, headers=h)
    assert (demote.status_code, demote.json()["code"]) == (409, "SELF_LOCKOUT")
    rename = await client.patch(f"/admin/users/{U_ADMIN}", json={"full_name": "Ada A."}, headers=h)
    assert rename.status_code == 200
    assert [e["action"] for e in await audit_events(db)] == ["user.update"]


async def test_update_user(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    taken = await client.patch(
        f"/admin/users/{U_SCHED}", json={"email": "tara@alpha.example"}, headers=h
    )
    assert taken.json()["code"] == "EMAIL_TAKEN"
    same = await client.patch(
        f"/admin/users/{U_T1}", json={"email": "TARA@alpha.example"}, headers=h
    )
    assert same.status_code == 200  # their own address is not "taken"
    unlink = await client.patch(f"/admin/users/{U_T1}", json={"therapist_id": None}, headers=h)
    assert unlink.status_code == 400
    assert fields(unlink.json()) == ["therapist_id"]
    promote = await client.patch(f"/admin/users/{U_OFF}", json={"role": "admin"}, headers=h)
    assert promote.json()["data"]["role"] == "admin"


@pytest.mark.parametrize("who", ["scheduler", "therapist"])
async def test_only_admins_manage_users_and_settings(
    client: httpx.AsyncClient, clinic: Clinic, who: str
) -> None:
    h = clinic.headers(who)
    for method, path, body in (
        ("GET", "/admin/users", None),
        ("GET", f"/admin/users/{U_ADMIN}", None),
        ("POST", "/admin/users", {"email": "x@alpha.example", "full_name": "X", "role": "admin"}),
        ("GET", "/admin/organization/settings", None),
        ("PATCH", "/admin/organization/settings", {"buffer_minutes": 5}),
    ):
        r = await client.request(method, path, json=body, headers=h)
        assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), (method, path)


async def test_other_organizations_user_is_not_found(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    assert (await client.get(f"/admin/users/{U_B}", headers=h)).status_code == 404
    assert (await client.post(f"/admin/users/{U_B}/archive", headers=h)).status_code == 404


async def test_settings_are_merged_and_validated(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    r = await client.patch(
        "/admin/organization/settings",
        json={
            "availability_policy": "warn",
            "cancellation_policies": [
                {"name": "standard", "notice_hours": 24},
                {"name": "strict", "notice_hours": 48, "release_units_on_late_cancel": False},
            ],
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    settings = r.json()["data"]["settings"]
    assert settings["availability_policy"] == "warn"
    assert settings["buffer_minutes"] == 15  # untouched
    assert [p["name"] for p in settings["cancellation_policies"]] == ["standard", "strict"]
    again = await client.get("/admin/organization/settings", headers=h)
    assert again.json()["data"]["settings"] == settings
    assert [(e["action"], e["details"]) for e in await audit_events(db)] == [
        (
            "organization.settings.update",
            {"fields": ["availability_policy", "cancellation_policies"]},
        )
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"buffer_minutes": 241}, "buffer_minutes"),
        ({"default_cancellation_policy": "lenient"}, "settings"),
        ({"default_service_code": "12345"}, "default_service_code"),
        ({"supervision_pairs": [["97155", "99999"]]}, "supervision_pairs"),
        ({"supervision_pairs": [["97155", "97155"]]}, "supervision_pairs"),
        ({"supervision_pairs": [["97155", "97153"], ["97155", "97153"]]}, "supervision_pairs"),
        ({"supervision_min_percent": 101}, "supervision_min_percent"),
        ({"supervision_min_contacts": -1}, "supervision_min_contacts"),
        ({"colour": "blue"}, "colour"),
        ({}, "settings"),
    ],
)
async def test_bad_settings_change_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, body: dict[str, object], field: str
) -> None:
    h = clinic.headers("admin")
    before = (await client.get("/admin/organization/settings", headers=h)).json()
    r = await client.patch("/admin/organization/settings", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    assert (await client.get("/admin/organization/settings", headers=h)).json() == before
    assert await audit_events(db) == []


async def test_settings_body_must_be_an_object(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.patch(
        "/admin/organization/settings", json=[1, 2], headers=clinic.headers("admin")
    )
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")
    raw = await client.patch(
        "/admin/organization/settings",
        content=b"{not json",
        headers={**clinic.headers("admin"), "Content-Type": "application/json"},
    )
    assert (raw.status_code, raw.json()["code"]) == (400, "INVALID_JSON")


def test_stored_settings_are_validated_once_per_content() -> None:
    """`OrganizationSettings.of_row` (every request's `principal.settings`) is `load`, validated
    once per process for each stored content: equal content (in any key order) gives the same
    instance, other content its own; unknown keys are ignored as `load` ignores them."""
    stored = {"buffer_minutes": 15, "availability_policy": "warn", "from_a_newer_version": 1}
    first = OrganizationSettings.of_row(stored)
    assert first == OrganizationSettings.load(stored)
    assert OrganizationSettings.of_row(dict(reversed(stored.items()))) is first
    changed = OrganizationSettings.of_row({**stored, "buffer_minutes": 30})
    assert changed.buffer_minutes == 30
    assert first.buffer_minutes == 15
    assert OrganizationSettings.of_row(None) == OrganizationSettings.load(None)
    with pytest.raises(ValueError, match="less than or equal to 240"):
        OrganizationSettings.of_row({"buffer_minutes": 241})
    big = {"buffer_minutes": 15, "from_a_newer_version": 2**70}  # beyond orjson's integers
    assert OrganizationSettings.of_row(big) == OrganizationSettings.load(big)
