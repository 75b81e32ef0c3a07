"""The admin API's JSON bodies take each value as the JSON type its schema documents: a boolean as
true/false, a number as a number, a date or a time as a string (docs/DECISIONS.md, "In a JSON body").
Lax parsing took "true", 0, "10" or 32400 for them; each is now a 400 naming its field, and nothing
changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin.helpers import audit_events
from tests.conftest import count_rows
from tests.fixtures import C2, L3, T1, Clinic
from therapy_scheduler.infra.db import Database

AUTHORIZATION = {
    "client_id": C2,
    "payer": "Keystone",
    "number": "A-3",
    "start_date": "2027-03-06",
    "end_date": "2027-09-05",
    "status": "approved",
}

WRONG_TYPES: list[tuple[str, str, str, dict[str, Any], str, str]] = [
    (
        "location active as text",
        "POST",
        "/admin/locations",
        {"name": "Lincoln Elementary", "location_type": "school", "is_active": "true"},
        "is_active",
        "must be true or false, not a string",
    ),
    (
        "location active as a number",
        "PATCH",
        f"/admin/locations/{L3}",
        {"is_active": 0},
        "is_active",
        "must be true, false or null, not an integer",
    ),
    (
        "birth date as a timestamp",
        "POST",
        "/admin/clients",
        {"full_name": "Ada A.", "date_of_birth": 1262304000},
        "date_of_birth",
        "must be a string or null, not an integer",
    ),
    (
        "caseload as one id",
        "PUT",
        f"/admin/clients/{C2}/caseload",
        {"therapist_ids": T1},
        "therapist_ids",
        "must be an array, not a string",
    ),
    (
        "window start in seconds",
        "PUT",
        f"/admin/therapists/{T1}/availability",
        {"windows": [{"weekday": "monday", "start": 32400, "end": "17:00"}]},
        "windows.0.start",
        "must be a string, not an integer",
    ),
    (
        "time off start as a timestamp",
        "POST",
        f"/admin/therapists/{T1}/time-off",
        {"start": 1807257600, "end": "2027-04-01T11:00"},
        "start",
        "must be a string, not an integer",
    ),
    (
        "approved units as text",
        "POST",
        "/admin/authorizations",
        {**AUTHORIZATION, "services": [{"service_code": "97153", "approved_units": "300"}]},
        "services.0.approved_units",
        "must be an integer, not a string",
    ),
    (
        "unit minutes as a fraction",
        "POST",
        "/admin/authorizations",
        {
            **AUTHORIZATION,
            "services": [{"service_code": "97153", "approved_units": 300, "unit_minutes": 15.0}],
        },
        "services.0.unit_minutes",
        "must be an integer, not a number",
    ),
    (
        "buffer as text",
        "PATCH",
        "/admin/organization/settings",
        {"buffer_minutes": "10"},
        "buffer_minutes",
        "must be an integer, not a string",
    ),
    (
        "notice hours as text",
        "PATCH",
        "/admin/organization/settings",
        {"cancellation_policies": [{"name": "standard", "notice_hours": "24"}]},
        "cancellation_policies.0.notice_hours",
        "must be a number, not a string",
    ),
    (
        "release units as a number",
        "PATCH",
        "/admin/organization/settings",
        {"cancellation_policies": [{"name": "standard", "release_units_on_late_cancel": 1}]},
        "cancellation_policies.0.release_units_on_late_cancel",
        "must be true or false, not an integer",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "field", "message"),
    WRONG_TYPES,
    ids=[c[0] for c in WRONG_TYPES],
)
async def test_wrong_json_type_is_400_naming_the_field(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    case: str,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    h = clinic.headers("admin")
    before = (await client.get("/admin/organization/settings", headers=h)).json()
    r = await client.request(method, path, json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert r.json()["details"] == {
        "fields": [{"field": field, "message": message, "type": "value_error"}]
    }
    assert r.json()["error"].endswith(f" {field}: {message}")
    assert await audit_events(db) == []
    assert (await client.get("/admin/organization/settings", headers=h)).json() == before


async def test_import_document_values_have_their_json_types(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    new_location = "00000000-0000-0000-0000-00000000c101"
    document = {
        "locations": [
            {"id": new_location, "name": "Annex", "location_type": "clinic", "is_active": "yes"}
        ],
        "authorizations": [
            {
                **AUTHORIZATION,
                "id": "00000000-0000-0000-0000-00000000c401",
                "services": [{"service_code": "97153", "approved_units": "300"}],
            }
        ],
    }
    r = await client.post("/admin/import", json=document, headers=clinic.headers("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "IMPORT_INVALID"
    assert r.json()["details"]["problems"] == [
        "locations[0].is_active: must be true or false, not a string",
        "authorizations[0].services[0].approved_units: must be an integer, not a string",
    ]
    assert await count_rows(db, "locations") == 4
    assert await count_rows(db, "authorizations") == 3
    assert await audit_events(db) == []
