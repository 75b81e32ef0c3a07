from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import A1, A2, AB, C1, C2, CB, Clinic
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuthorizationService

NEW = {
    "client_id": C2,
    "payer": "Keystone",
    "number": "A-3",
    "start_date": "2027-03-06",
    "end_date": "2027-09-05",
    "status": "approved",
    "services": [
        {"service_code": "97155", "approved_units": 24},
        {"service_code": "97153", "approved_units": 300, "unit_minutes": 15},
    ],
}


async def test_admin_creates_an_authorization(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.post("/admin/authorizations", json=NEW, headers=clinic.headers("admin"))
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    new_id = data.pop("id")
    data.pop("created_at")
    assert data == {
        "client_id": C2,
        "payer": "Keystone",
        "number": "A-3",
        "start_date": "2027-03-06",
        "end_date": "2027-09-05",
        "status": "approved",
        "services": [
            {
                "service_code": "97153",
                "approved_units": 300,
                "unit_minutes": 15,
                "units_used": 0,
                "units_reserved": 0,
                "units_remaining": 300,
                "weekly_cap_units": None,
                "weekly_cap_hours": None,
            },
            {
                "service_code": "97155",
                "approved_units": 24,
                "unit_minutes": 15,
                "units_used": 0,
                "units_reserved": 0,
                "units_remaining": 24,
                "weekly_cap_units": None,
                "weekly_cap_hours": None,
            },
        ],
    }
    events = await audit_events(db)
    assert [(e["action"], e["entity_id"], e["details"]) for e in events] == [
        ("authorization.create", new_id, {"client_id": C2, "services": ["97155", "97153"]})
    ]


async def test_balances_and_service_replacement(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("admin")
    r = await client.get(f"/admin/authorizations/{A1}", headers=h)
    # A1's sessions S1 (2 h = 8 units), S5, S7, S9 (1 h = 4 units each) are scheduled: 20 units.
    assert [
        (s["service_code"], s["units_used"], s["units_remaining"])
        for s in r.json()["data"]["services"]
    ] == [
        ("97153", 20, 20),
        ("97155", 0, 8),
    ]
    patched = await client.patch(
        f"/admin/authorizations/{A1}",
        json={"services": [{"service_code": "97153", "approved_units": 16}], "status": "expired"},
        headers=h,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()["data"]
    assert body["status"] == "expired"
    assert [
        (s["service_code"], s["approved_units"], s["units_remaining"]) for s in body["services"]
    ] == [
        ("97153", 16, -4)  # over-spent: allowed here, reported as a conflict by the schedule
    ]


async def test_list_filters_and_order(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = clinic.headers("scheduler")
    await client.post("/admin/authorizations", json=NEW, headers=clinic.headers("admin"))
    r = await client.get("/admin/authorizations", headers=h)
    assert r.status_code == 200
    assert [a["number"] for a in r.json()["data"]] == ["A-3", "A-2", "A-1"]  # A-2's id sorts last
    by_client = await client.get(f"/admin/authorizations?client_id={C1}", headers=h)
    assert [a["id"] for a in by_client.json()["data"]] == [A1]
    active = await client.get("/admin/authorizations?active_on=2027-04-01", headers=h)
    assert [a["number"] for a in active.json()["data"]] == ["A-3", "A-1"]
    pending = await client.get("/admin/authorizations?status=pending", headers=h)
    assert pending.json()["data"] == []
    first = await client.get("/admin/authorizations?limit=2", headers=h)
    rest = await client.get(
        f"/admin/authorizations?limit=2&cursor={first.json()['pagination']['next_cursor']}",
        headers=h,
    )
    assert [a["number"] for a in rest.json()["data"]] == ["A-1"]


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        ("scheduler", "GET", f"/admin/authorizations/{A1}", 200),
        ("scheduler", "POST", "/admin/authorizations", 403),
        ("scheduler", "PATCH", f"/admin/authorizations/{A1}", 403),
        ("therapist", "GET", "/admin/authorizations", 403),
        ("admin", "GET", f"/admin/authorizations/{AB}", 404),
        ("admin", "PATCH", f"/admin/authorizations/{AB}", 404),
    ],
)
async def test_roles_and_tenants(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    who: str,
    method: str,
    path: str,
    status: int,
) -> None:
    body = NEW if method == "POST" else ({"status": "denied"} if method == "PATCH" else None)
    r = await client.request(method, path, json=body, headers=clinic.headers(who))
    assert r.status_code == status, r.text
    assert await audit_events(db) == []


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"client_id": CB}, 404, None),
        ({"end_date": "2027-01-01"}, 400, "end_date"),
        ({"status": "approvedish"}, 400, "status"),
        (
            {"services": [{"service_code": "99999", "approved_units": 1}]},
            400,
            "services.0.service_code",
        ),
        (
            {"services": [{"service_code": "97153", "approved_units": -1}]},
            400,
            "services.0.approved_units",
        ),
        (
            {
                "services": [
                    {"service_code": "97153", "approved_units": 1},
                    {"service_code": "97153", "approved_units": 2},
                ]
            },
            400,
            "services.1.service_code",
        ),
    ],
)
async def test_create_bad_input_changes_nothing(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    change: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    r = await client.post(
        "/admin/authorizations", json={**NEW, **change}, headers=clinic.headers("admin")
    )
    assert r.status_code == status, r.text
    if field:
        assert fields(r.json()) == [field]
    assert await count_rows(db, "authorizations") == 3
    assert await count_rows(db, "authorization_services") == 4


async def test_patch_dates_are_checked_against_the_stored_ones(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.patch(
        f"/admin/authorizations/{A2}",
        json={"start_date": "2027-04-01"},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 400
    assert fields(r.json()) == ["end_date"]
    cannot_move = await client.patch(
        f"/admin/authorizations/{A2}", json={"client_id": C1}, headers=clinic.headers("admin")
    )
    assert cannot_move.status_code == 400
    assert fields(cannot_move.json()) == ["client_id"]


# --- weekly caps (docs/ADMIN.md) ---------------------------------------------------------------


async def test_weekly_caps_in_units_or_hours(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    services = [
        {"service_code": "97153", "approved_units": 300, "weekly_cap_hours": 7.5},
        {"service_code": "97155", "approved_units": 24, "weekly_cap_units": 4},
    ]
    r = await client.post("/admin/authorizations", json={**NEW, "services": services}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    assert [
        (s["service_code"], s["weekly_cap_units"], s["weekly_cap_hours"])
        for s in created["services"]
    ] == [("97153", None, 7.5), ("97155", 4, None)]
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(
                    AuthorizationService.service_code,
                    AuthorizationService.weekly_cap_units,
                    AuthorizationService.weekly_cap_minutes,
                )
                .where(AuthorizationService.authorization_id == uuid.UUID(created["id"]))
                .order_by(AuthorizationService.service_code)
            )
        ).all()
    assert [tuple(row) for row in stored] == [("97153", None, 450), ("97155", 4, None)]
    # A PATCH of `services` replaces them, caps included.
    r = await client.patch(
        f"/admin/authorizations/{created['id']}",
        json={"services": [{"service_code": "97153", "approved_units": 300}]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["services"][0]["weekly_cap_hours"] is None


@pytest.mark.parametrize(
    ("cap", "field"),
    [
        ({"weekly_cap_units": 0}, "services.0.weekly_cap_units"),
        ({"weekly_cap_units": -2}, "services.0.weekly_cap_units"),
        ({"weekly_cap_hours": 0}, "services.0.weekly_cap_hours"),
        ({"weekly_cap_hours": -1.5}, "services.0.weekly_cap_hours"),
        ({"weekly_cap_hours": 1.0001}, "services.0.weekly_cap_hours"),
        ({"weekly_cap_hours": "10"}, "services.0.weekly_cap_hours"),
        ({"weekly_cap_units": 1.5}, "services.0.weekly_cap_units"),
        ({"weekly_cap_units": 8, "weekly_cap_hours": 2}, "services.0.weekly_cap_hours"),
    ],
)
async def test_bad_weekly_caps_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    cap: dict[str, object],
    field: str,
) -> None:
    h = clinic.headers("admin")
    services = [{"service_code": "97153", "approved_units": 40, **cap}]
    r = await client.post("/admin/authorizations", json={**NEW, "services": services}, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    r = await client.patch(f"/admin/authorizations/{A1}", json={"services": services}, headers=h)
    assert r.status_code == 400, r.text
    assert fields(r.json()) == [field]
    assert await count_rows(db, "authorizations") == 3
    assert await count_rows(db, "authorization_services") == 4
    shown = await client.get(f"/admin/authorizations/{A1}", headers=h)
    assert [s["approved_units"] for s in shown.json()["data"]["services"]] == [40, 8]
