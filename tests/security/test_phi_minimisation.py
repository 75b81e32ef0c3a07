"""Minimum necessary (docs/API.md): contact data only for admins who ask, no authorization
figures for therapists, nothing personal in logs even at DEBUG, nothing cacheable by browsers."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.fixtures import Clinic, clinic_document
from tests.security.endpoints import (
    CALLERS,
    CREATED_NAMES,
    ENDPOINTS,
    ID_PARAMETERS,
    NONEXISTENT,
)
from tests.security.phi_plugin import CLIENT_LOGGERS, phi_needles, record_text, scan_text

ROLES = [c.role for c in CALLERS] + ["inactive"]


def _contacts() -> list[str]:
    doc = clinic_document()
    return [
        value
        for group in ("therapists", "clients", "users")
        for person in doc[group]
        for value in (person.get("email"), person.get("phone"))
        if value
    ]


def _requests(clinic: Clinic) -> list[tuple[str, str, dict[str, Any]]]:
    """Every endpoint for every role, plus the refusals: hidden ids, bad tokens, bad input (some of
    it personal data typed into the wrong field)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for role in ROLES:
        headers = clinic.headers(role)
        for e in ENDPOINTS:
            out.append((e.method, e.path, {"headers": headers, **e.request}))
        caller = next((c for c in CALLERS if c.role == role), CALLERS[0])
        for p in ID_PARAMETERS:
            values = [caller.own[p.kind], caller.foreign[p.kind], NONEXISTENT[p.kind]]
            if caller.out_of_scope:
                values.append(caller.out_of_scope[p.kind])
            for value in values:
                out.append(
                    (p.method, p.url(value), {"headers": headers, **p.request(value, caller.own)})
                )
        contact = {"include_contact": "true", "include_inactive": "true"}
        out.append(("GET", "/get-dropdown-data", {"headers": headers, "params": contact}))
        typed = {"status": "Casey Cole", "location_type": "tara@alpha.example"}
        out.append(("GET", "/get-sessions-optimized", {"headers": headers, "params": typed}))
        broken: dict[str, Any] = {
            "headers": headers | {"Content-Type": "application/json"},
            "content": b'{"start_date": "Casey Cole", "client_ids": ["+1-555-0201"',
        }
        out.append(("POST", "/get-schedule-data-batch", broken))
        typed_json = {"start_date": "Casey Cole", "end_date": "2027-01-01", "notes": "x"}
        out.append(("POST", "/get-schedule-data-batch", {"headers": headers, "json": typed_json}))
    token = clinic.tokens["admin"]
    for header in (f"Bearer {token}x", f"Basic {token}", f"Bearer {token[:-3]}"):
        out.append(("GET", "/get-sessions-optimized", {"headers": {"Authorization": header}}))
    return out


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything at DEBUG from every logger, set before the clinic is seeded (imports are scanned too)."""
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_logs_hold_no_personal_data_or_tokens(
    debug_logs: pytest.LogCaptureFixture, client: httpx.AsyncClient, clinic: Clinic
) -> None:
    sent = 0
    for method, path, kwargs in _requests(clinic):
        r = await client.request(method, path, **kwargs)
        assert r.status_code < 500, r.text
        sent += 1
    records = [
        *debug_logs.get_records("setup"),
        *debug_logs.get_records("call"),
    ]
    # The capture really ran at DEBUG and saw every request (one access line each).
    access = [r for r in records if r.name == "therapy_scheduler.access"]
    assert len(access) == sent
    needles = phi_needles() | {token: "bearer token" for token in clinic.tokens.values()}
    # httpx/httpcore are this test's own client, which logs the URLs it was asked to send.
    hits = [
        (r.name, r.getMessage()[:300], scan_text(record_text(r), needles))
        for r in records
        if not r.name.startswith(CLIENT_LOGGERS)
    ]
    assert [h for h in hits if h[2]] == []


async def test_contact_data_only_for_admins_who_ask(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    contacts = _contacts()
    for role in ROLES:
        for method, path, kwargs in _requests(clinic):
            if kwargs["headers"].get("Authorization") != clinic.headers(role)["Authorization"]:
                continue
            r = await client.request(method, path, **kwargs)
            # The admin API is where an admin asks for a person's record, contact data included.
            asked = path.startswith("/admin/") or (
                path == "/get-dropdown-data"
                and kwargs.get("params", {}).get("include_contact") == "true"
            )
            if role in ("admin", "admin_b") and asked:
                continue
            # Input a caller typed is echoed in their own validation error; stored data is not.
            leaked = [c for c in contacts if c in r.text and c not in repr(kwargs)]
            assert leaked == [], (role, method, path)

    # The positive control: an admin who asks gets exactly their organization's contact data.
    r = await client.get(
        "/get-dropdown-data",
        params={"types": "therapists,clients", "include_contact": "true"},
        headers=clinic.headers("admin"),
    )
    data = r.json()["data"]
    # Ignore the people the table's own create requests (run above, as admins) added.
    data = {k: [p for p in data[k] if p["full_name"] not in CREATED_NAMES] for k in data}
    assert {(t["full_name"], t["email"], t["phone"]) for t in data["therapists"]} == {
        ("Tara Quinn", "tara@alpha.example", "+1-555-0101"),
        ("Theo Ramos", "theo@alpha.example", "+1-555-0102"),
    }
    assert {(c["full_name"], c["email"], c["phone"]) for c in data["clients"]} == {
        ("Casey Cole", "cole.family@example.com", "+1-555-0201"),
        ("Drew Diaz", "diaz.family@example.com", "+1-555-0202"),
        ("Emery Evans", None, None),
    }


@pytest.mark.parametrize("role", ["therapist", "therapist2"])
async def test_therapists_never_see_authorization_figures(
    client: httpx.AsyncClient, clinic: Clinic, role: str
) -> None:
    headers = clinic.headers(role)
    for e in ENDPOINTS:
        r = await client.request(e.method, e.path, headers=headers, **e.request)
        for word in ("authorization", "sessions_remaining", "units_remaining", "Blue Harbor"):
            assert f'"{word}"' not in r.text or (word == "authorization" and e.path == "/metrics")
    r = await client.get("/get-sessions-optimized", headers=headers)
    sessions = r.json()["data"]["sessions"]
    assert sessions, "the therapist sees their own sessions"
    assert all("authorization" not in s for s in sessions)
    # The same sessions seen by a scheduler carry them.
    r = await client.get("/get-sessions-optimized", headers=clinic.headers("scheduler"))
    assert any(s.get("authorization") for s in r.json()["data"]["sessions"])


async def test_no_store_and_vary_on_every_response(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    extra: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/no-such-path", {}),
        ("DELETE", "/get-sessions-optimized", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/docs", {}),
        ("POST", "/get-schedule-data-batch", {"content": b"x" * 300_000,
                                              "headers": {"Content-Type": "application/json"}}),
        ("POST", "/get-schedule-data-batch", {"content": b"a=b",
                                              "headers": {"Content-Type": "text/plain"}}),
    ]  # fmt: skip
    statuses = set()
    for method, path, kwargs in [*_requests(clinic), *extra]:
        r = await client.request(method, path, **kwargs)
        statuses.add(r.status_code)
        assert r.headers["cache-control"] == "no-store", (method, path)
        assert r.headers["vary"] == "Authorization", (method, path)
        assert r.headers["x-request-id"]
    assert statuses >= {200, 400, 401, 403, 404, 405, 413, 415}


async def test_dropdown_default_is_all_types_without_contact(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    """No `types` means all of them (this was an empty `data` before), and still no contact data."""
    for role in ("admin", "scheduler", "therapist"):
        r = await client.get("/get-dropdown-data", headers=clinic.headers(role))
        data = r.json()["data"]
        assert sorted(data) == sorted(
            [
                "therapists",
                "clients",
                "locations",
                "location_types",
                "service_codes",
                "session_statuses",
                "cancellation_reasons",
            ]
        )
        assert all("email" not in p and "phone" not in p for p in data["therapists"])
        assert all("email" not in p and "phone" not in p for p in data["clients"])
