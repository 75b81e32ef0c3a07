"""Coordinates of locations, the travel-time matrix and the travel settings through the admin API
(docs/ADMIN.md), on SQLite and PostgreSQL: good input is stored and read back, bad input is a 400 naming
the field and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import L1, L2, L3, LB, Clinic
from tests.support import uid
from therapy_scheduler.infra.db import Database


async def test_location_coordinates_are_created_changed_and_cleared(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("scheduler")
    r = await client.post(
        "/admin/locations",
        json={
            "name": "Lincoln Elementary",
            "location_type": "school",
            "latitude": 40.7580,
            "longitude": -73.9855,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert (new["latitude"], new["longitude"]) == (40.758, -73.9855)
    r = await client.patch(
        f"/admin/locations/{L1}", json={"latitude": -90, "longitude": 180}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["latitude"], r.json()["data"]["longitude"]) == (-90, 180)
    r = await client.get(f"/admin/locations/{L1}", headers=h)
    assert (r.json()["data"]["latitude"], r.json()["data"]["longitude"]) == (-90, 180)
    r = await client.patch(
        f"/admin/locations/{L1}", json={"latitude": None, "longitude": None}, headers=h
    )
    assert (r.json()["data"]["latitude"], r.json()["data"]["longitude"]) == (None, None)
    listed = await client.get("/admin/locations", headers=h)
    assert {loc["name"]: loc["latitude"] for loc in listed.json()["data"]}[
        "Lincoln Elementary"
    ] == (40.758)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"latitude": 90.5, "longitude": 0}, "latitude"),
        ({"latitude": -91, "longitude": 0}, "latitude"),
        ({"latitude": 0, "longitude": 180.01}, "longitude"),
        ({"latitude": 0, "longitude": -181}, "longitude"),
        ({"latitude": 40.7}, "longitude"),
        ({"longitude": -73.9}, "longitude"),
        ({"latitude": 40.7, "longitude": None}, "longitude"),
        ({"latitude": "40.7", "longitude": -73.9}, "latitude"),
    ],
)
async def test_bad_coordinates_change_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, body: dict[str, Any], field: str
) -> None:
    h = clinic.headers("admin")
    before = (await client.get(f"/admin/locations/{L1}", headers=h)).json()
    r = await client.patch(f"/admin/locations/{L1}", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    created = await client.post(
        "/admin/locations", json={"name": "X", "location_type": "home", **body}, headers=h
    )
    assert created.status_code == 400, created.text
    assert fields(created.json()) == [field]
    assert (await client.get(f"/admin/locations/{L1}", headers=h)).json() == before
    assert await count_rows(db, "locations") == 4
    assert await audit_events(db) == []


async def test_matrix_is_replaced_symmetric_and_audited(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("scheduler")
    r = await client.get("/admin/travel-times", headers=h)
    assert (r.status_code, r.json()["data"]) == (200, [])
    # Entries come back once per pair, the smaller id first, whatever order they were given in.
    r = await client.put(
        "/admin/travel-times",
        json={
            "entries": [
                {"from_location_id": L3, "to_location_id": L1, "minutes": 25},
                {"from_location_id": L1, "to_location_id": L2, "minutes": 0},
            ]
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    expected = [
        {"from_location_id": L1, "to_location_id": L2, "minutes": 0},
        {"from_location_id": L1, "to_location_id": L3, "minutes": 25},
    ]
    assert r.json()["data"] == expected
    assert (await client.get("/admin/travel-times", headers=h)).json()["data"] == expected
    r = await client.put(
        "/admin/travel-times",
        json={"entries": [{"from_location_id": L2, "to_location_id": L3, "minutes": 240}]},
        headers=h,
    )
    assert r.json()["data"] == [{"from_location_id": L2, "to_location_id": L3, "minutes": 240}]
    assert await count_rows(db, "location_travel") == 1
    assert [(e["action"], e["details"]) for e in await audit_events(db)] == [
        ("location_travel.replace", {"entries": 2}),
        ("location_travel.replace", {"entries": 1}),
    ]
    # Another organization sees none of it; a therapist may not read it.
    r = await client.get("/admin/travel-times", headers=clinic.headers("admin_b"))
    assert r.json()["data"] == []
    r = await client.get("/admin/travel-times", headers=clinic.headers("therapist"))
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ([{"from_location_id": L1, "to_location_id": L2, "minutes": -5}], "entries.0.minutes"),
        ([{"from_location_id": L1, "to_location_id": L2, "minutes": 241}], "entries.0.minutes"),
        (
            [{"from_location_id": L1, "to_location_id": L1, "minutes": 5}],
            "entries.0.to_location_id",
        ),
        (
            [
                {"from_location_id": L1, "to_location_id": L2, "minutes": 5},
                {"from_location_id": L2, "to_location_id": L1, "minutes": 9},
            ],
            "entries.1",
        ),
        (
            [
                {"from_location_id": L1, "to_location_id": L2, "minutes": 5},
                {"from_location_id": uid(0xDEAD), "to_location_id": L1, "minutes": 9},
            ],
            "entries.1.from_location_id",
        ),
        (
            [{"from_location_id": L1, "to_location_id": LB, "minutes": 5}],
            "entries.0.to_location_id",
        ),
        ([{"from_location_id": L1, "to_location_id": L2}], "entries.0.minutes"),
        (
            [{"from_location_id": "x", "to_location_id": L2, "minutes": 1}],
            "entries.0.from_location_id",
        ),
    ],
)
async def test_bad_matrix_changes_nothing(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    entries: list[dict[str, Any]],
    field: str,
) -> None:
    h = clinic.headers("admin")
    kept = [{"from_location_id": L1, "to_location_id": L3, "minutes": 25}]
    r = await client.put("/admin/travel-times", json={"entries": kept}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.put("/admin/travel-times", json={"entries": entries}, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    assert (await client.get("/admin/travel-times", headers=h)).json()["data"] == kept
    assert len(await audit_events(db)) == 1


async def test_travel_settings_are_stored(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("admin")
    r = await client.get("/admin/organization/settings", headers=h)
    settings = r.json()["data"]["settings"]
    assert {k: settings[k] for k in settings if k.startswith("travel")} == {
        "travel_policy": "block",
        "travel_speed_kmh": 30,
        "travel_margin_minutes": 5,
        "travel_defaults": [],
    }
    change = {
        "travel_policy": "warn",
        "travel_speed_kmh": 42.5,
        "travel_margin_minutes": 0,
        "travel_defaults": [
            {"location_types": ["home", "school"], "minutes": 20},
            {"location_types": ["clinic", "home"], "minutes": 25},
        ],
    }
    r = await client.patch("/admin/organization/settings", json=change, headers=h)
    assert r.status_code == 200, r.text
    settings = r.json()["data"]["settings"]
    assert {k: settings[k] for k in change} == change


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"travel_speed_kmh": -30}, "travel_speed_kmh"),
        ({"travel_speed_kmh": 0}, "travel_speed_kmh"),
        ({"travel_margin_minutes": -1}, "travel_margin_minutes"),
        ({"travel_policy": "sometimes"}, "travel_policy"),
        (
            {"travel_defaults": [{"location_types": ["home", "school"], "minutes": -5}]},
            "travel_defaults.0.minutes",
        ),
        (
            {"travel_defaults": [{"location_types": ["home", "telehealth"], "minutes": 5}]},
            "travel_defaults.0.location_types.1",
        ),
        (
            {
                "travel_defaults": [
                    {"location_types": ["home", "school"], "minutes": 5},
                    {"location_types": ["school", "home"], "minutes": 10},
                ]
            },
            "travel_defaults",
        ),
    ],
)
async def test_bad_travel_settings_change_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, body: dict[str, Any], field: str
) -> None:
    h = clinic.headers("admin")
    before = (await client.get("/admin/organization/settings", headers=h)).json()
    r = await client.patch("/admin/organization/settings", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    assert (await client.get("/admin/organization/settings", headers=h)).json() == before
    assert await audit_events(db) == []
