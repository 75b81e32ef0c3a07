"""GET /get-dropdown-data through HTTP (docs/API.md): types, scoping, contact data, inactive people,
the server-side cache and its invalidation, privacy headers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.fixtures import (
    C1,
    C2,
    C3,
    C4,
    CB,
    L1,
    L2,
    L3,
    LB,
    ORG_A,
    T1,
    T2,
    T3,
    T4,
    TB,
    Clinic,
)
from tests.support import assert_error
from therapy_scheduler.dropdown.service import invalidate_dropdowns
from therapy_scheduler.infra import changes
from therapy_scheduler.infra.db import Database

URL = "/get-dropdown-data"
ALL_TYPES = {
    "therapists",
    "clients",
    "locations",
    "location_types",
    "service_codes",
    "session_statuses",
    "cancellation_reasons",
}


def _t(tid: str, name: str, credential: str, status: str = "active") -> dict[str, Any]:
    return {"id": tid, "full_name": name, "credential": credential, "status": status}


def _c(cid: str, name: str, status: str = "active") -> dict[str, Any]:
    return {"id": cid, "full_name": name, "status": status}


def _l(lid: str, name: str, kind: str, active: bool = True) -> dict[str, Any]:
    return {"id": lid, "name": name, "location_type": kind, "is_active": active}


async def _get(client: httpx.AsyncClient, clinic: Clinic, who: str, **params: str) -> Any:
    r = await client.get(URL, params=params, headers=clinic.headers(who))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["vary"] == "Authorization"
    return r.json()


@pytest.mark.parametrize("params", [{}, {"types": "all"}, {"types": ""}, {"types": "all,clients"}])
async def test_default_is_every_type(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, str]
) -> None:
    body = await _get(client, clinic, "admin", **params)
    assert set(body) == {"success", "data", "cached", "lastUpdated"}
    assert body["success"] is True
    assert set(body["data"]) == ALL_TYPES


async def test_admin_lists_active_people_and_places_without_contact_data(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    body = await _get(client, clinic, "admin")
    data = body["data"]
    assert data["therapists"] == [_t(T1, "Tara Quinn", "BCBA"), _t(T2, "Theo Ramos", "RBT")]
    assert data["clients"] == [
        _c(C1, "Casey Cole"),
        _c(C2, "Drew Diaz"),
        _c(C3, "Emery Evans"),
    ]
    assert data["locations"] == [
        _l(L1, "Main clinic", "clinic"),
        _l(L2, "Telehealth", "telehealth"),
    ]
    assert "@" not in str(data)
    assert "+1-555" not in str(data)


async def test_vocabularies(client: httpx.AsyncClient, clinic: Clinic) -> None:
    body = await _get(
        client,
        clinic,
        "therapist",
        types="location_types,service_codes,session_statuses,cancellation_reasons",
    )
    data = body["data"]
    assert set(data) == {
        "location_types",
        "service_codes",
        "session_statuses",
        "cancellation_reasons",
    }
    assert data["location_types"] == [
        {"value": "clinic", "label": "Clinic"},
        {"value": "home", "label": "Home"},
        {"value": "school", "label": "School"},
        {"value": "telehealth", "label": "Telehealth"},
        {"value": "community", "label": "Community"},
    ]
    assert [s["code"] for s in data["service_codes"]] == [str(c) for c in range(97151, 97159)]
    assert data["service_codes"][2] == {
        "code": "97153",
        "label": "Adaptive behavior treatment by protocol",
        "unit_minutes": 15,
    }
    assert [s["value"] for s in data["session_statuses"]] == [
        "scheduled",
        "in_progress",
        "completed",
        "cancelled",
        "no_show",
    ]
    assert [r["code"] for r in data["cancellation_reasons"]] == [
        "client_illness",
        "client_schedule_conflict",
        "client_no_transport",
        "therapist_illness",
        "therapist_unavailable",
        "weather",
        "clinic_closure",
        "authorization_issue",
        "other",
    ]
    assert data["cancellation_reasons"][0] == {
        "code": "client_illness",
        "label": "Client illness",
        "attributed_to": "client",
    }


async def test_include_inactive_covers_archived_people_and_inactive_places(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    for who in ("admin", "scheduler"):
        data = (
            await _get(
                client,
                clinic,
                who,
                types="therapists,clients,locations",
                include_inactive="true",
            )
        )["data"]
        assert data == {
            "therapists": [
                _t(T4, "Arlo Archived", "RBT"),
                _t(T3, "Ines Inactive", "RBT", "inactive"),
                _t(T1, "Tara Quinn", "BCBA"),
                _t(T2, "Theo Ramos", "RBT"),
            ],
            "clients": [
                _c(C1, "Casey Cole"),
                _c(C2, "Drew Diaz"),
                _c(C3, "Emery Evans"),
                _c(C4, "Flynn Inactive", "inactive"),
            ],
            "locations": [
                _l(L3, "Closed clinic", "clinic", active=False),
                _l(L1, "Main clinic", "clinic"),
                _l(L2, "Telehealth", "telehealth"),
            ],
        }


async def test_therapist_sees_only_self_and_caseload(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    data = (await _get(client, clinic, "therapist", types="therapists,clients,locations"))["data"]
    # C4 is on T1's caseload but inactive.
    assert data == {
        "therapists": [_t(T1, "Tara Quinn", "BCBA")],
        "clients": [_c(C1, "Casey Cole"), _c(C3, "Emery Evans")],
        "locations": [_l(L1, "Main clinic", "clinic"), _l(L2, "Telehealth", "telehealth")],
    }
    other = (await _get(client, clinic, "therapist2", types="therapists,clients"))["data"]
    assert other == {
        "therapists": [_t(T2, "Theo Ramos", "RBT")],
        "clients": [_c(C2, "Drew Diaz"), _c(C3, "Emery Evans")],
    }


async def test_other_organization_sees_only_its_own(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    data = (await _get(client, clinic, "admin_b", types="therapists,clients,locations"))["data"]
    assert data == {
        "therapists": [_t(TB, "Bea Beta", "BCBA")],
        "clients": [_c(CB, "Gale Beta")],
        "locations": [_l(LB, "Beta clinic", "clinic")],
    }


async def test_contact_data_only_for_admin_on_request(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    data = (await _get(client, clinic, "admin", types="therapists,clients", include_contact="1"))[
        "data"
    ]
    assert data["therapists"][0] == {
        **_t(T1, "Tara Quinn", "BCBA"),
        "email": "tara@alpha.example",
        "phone": "+1-555-0101",
    }
    assert data["clients"][2] == {**_c(C3, "Emery Evans"), "email": None, "phone": None}
    for who in ("scheduler", "therapist"):
        r = await client.get(URL, params={"include_contact": "true"}, headers=clinic.headers(who))
        assert_error(r, 403, "FORBIDDEN")


async def test_include_inactive_is_forbidden_for_therapists(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get(
        URL, params={"include_inactive": "true"}, headers=clinic.headers("therapist")
    )
    body = assert_error(r, 403, "FORBIDDEN")
    assert r.headers["cache-control"] == "no-store"
    assert "@" not in body["error"]
    ok = await client.get(
        URL, params={"include_inactive": "false"}, headers=clinic.headers("therapist")
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"types": "therapists,staff"},
        {"types": "Therapists"},
        {"include_inactive": "yes"},
        {"include_inactive": ""},
        {"include_contact": "2"},
    ],
)
async def test_invalid_parameters_are_400(
    client: httpx.AsyncClient, clinic: Clinic, params: dict[str, str]
) -> None:
    r = await client.get(URL, params=params, headers=clinic.headers("admin"))
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_server_cache_hit_and_invalidation(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], clinic: Clinic, db: Database
) -> None:
    app, client = app_and_client
    first = await _get(client, clinic, "admin", types="therapists")
    assert first["cached"] is False
    second = await _get(client, clinic, "admin", types="therapists")
    assert second["cached"] is True
    assert second["lastUpdated"] == first["lastUpdated"]
    assert second["data"] == first["data"]
    # Another scope, or other options, are cached separately.
    assert (await _get(client, clinic, "therapist", types="therapists"))["cached"] is False
    assert (await _get(client, clinic, "scheduler", types="therapists"))["cached"] is False
    assert (await _get(client, clinic, "admin", types="therapists", include_inactive="1"))[
        "cached"
    ] is False
    # A write to the organization's people invalidates its dropdowns; org B keeps its cache.
    assert (await _get(client, clinic, "admin_b", types="therapists"))["cached"] is False
    async with db.write() as conn:
        # As every write path does (audited writes through infra/audit_log.py): without it, the
        # change counter's safety net would bump every organization's version.
        changes.touch(conn, uuid.UUID(ORG_A))
        await conn.execute(
            text(
                "UPDATE therapists SET full_name = 'Tara Quinn-Smith' WHERE full_name = 'Tara Quinn'"
            )
        )
    await invalidate_dropdowns(app.state.cache, ORG_A)
    third = await _get(client, clinic, "admin", types="therapists")
    assert third["cached"] is False
    assert third["lastUpdated"] >= first["lastUpdated"]
    assert third["data"]["therapists"][0]["full_name"] == "Tara Quinn-Smith"
    assert (await _get(client, clinic, "admin", types="therapists"))["cached"] is True
    assert (await _get(client, clinic, "admin_b", types="therapists"))["cached"] is True


async def test_last_updated_is_an_utc_instant(client: httpx.AsyncClient, clinic: Clinic) -> None:
    from datetime import UTC, datetime

    before = datetime.now(UTC)
    body = await _get(client, clinic, "scheduler", types="clients")
    stamp = datetime.fromisoformat(body["lastUpdated"].replace("Z", "+00:00"))
    assert body["lastUpdated"].endswith("Z")
    assert before <= stamp <= datetime.now(UTC)


async def test_cache_disabled_never_reports_cached(database_url: str) -> None:
    from tests.conftest import make_settings
    from tests.fixtures import seed_clinic
    from therapy_scheduler.app import close_app, create_app

    settings = make_settings(database_url, dropdown_cache_seconds=0)
    app = create_app(settings)
    try:
        clinic = await seed_clinic(app.state.db, settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(2):
                assert (await _get(client, clinic, "admin", types="clients"))["cached"] is False
    finally:
        await close_app(app)
