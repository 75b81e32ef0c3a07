"""Tenant and role isolation, generated from tests/security/endpoints.py: for every endpoint that takes
an id, every caller, and every id that caller may not see (another organization's, one of its own
organization outside its scope, one that does not exist), the answer is the same 404 with the same body
(apart from request_id), and nothing is written."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.routing import Route

from tests.conftest import make_settings
from tests.fixtures import Clinic
from tests.security.endpoints import (
    CALLERS,
    ENDPOINTS,
    ID_PARAMETERS,
    NONEXISTENT,
    UNCOVERED_ROUTES,
    Caller,
    Endpoint,
    IdParameter,
)
from therapy_scheduler.app import create_app
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models.base import Base

_COUNT_ALL = " UNION ALL ".join(
    f"SELECT '{t.name}' AS table_name, count(*) AS row_count FROM {t.name}"  # noqa: S608 - our own table names
    for t in Base.metadata.sorted_tables
)


async def row_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {row.table_name: int(row.row_count) for row in await conn.execute(text(_COUNT_ALL))}


def _without_request_id(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    assert body.get("request_id") == r.headers["x-request-id"]
    return {k: v for k, v in body.items() if k != "request_id"}


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.role)
@pytest.mark.parametrize("param", ID_PARAMETERS, ids=lambda p: p.name)
async def test_hidden_ids_are_indistinguishable_from_nonexistent(
    app_and_client: tuple[Any, httpx.AsyncClient],
    clinic: Clinic,
    db: Database,
    param: IdParameter,
    caller: Caller,
) -> None:
    app, client = app_and_client
    headers = clinic.headers(caller.role)

    async def send(value: str) -> httpx.Response:
        return await client.request(
            param.method, param.url(value), headers=headers, **param.request(value, caller.own)
        )

    own = await send(caller.own[param.kind])
    if param.allows(caller.role):
        assert own.status_code == param.own_status, own.text
        assert own.json()["success"] is True
    else:
        assert (own.status_code, own.json()["code"]) == (403, "FORBIDDEN"), own.text

    hidden = {"nonexistent": NONEXISTENT[param.kind], "foreign": caller.foreign[param.kind]}
    if caller.out_of_scope is not None:
        hidden["out_of_scope"] = caller.out_of_scope[param.kind]

    # The own request's PHI read is written by the background audit writer (infra/audit_writer.py):
    # write it now, so that it cannot land between the counts below.
    await app.state.audit_writer.flush()
    answers: dict[str, tuple[int, dict[str, Any]]] = {}
    for label, value in hidden.items():
        before = await row_counts(db)
        r = await send(value)
        assert await row_counts(db) == before, f"{label} id changed data"
        answers[label] = (r.status_code, _without_request_id(r))
        assert value not in r.text, f"{label} id echoed back"

    expected_status, expected_body = answers["nonexistent"]
    if param.allows(caller.role) and caller.role not in param.others_forbidden:
        assert (expected_status, expected_body["code"]) == (404, "NOT_FOUND")
    else:  # refused by role, whatever the id
        assert (expected_status, expected_body["code"]) == (403, "FORBIDDEN")
    for label, answer in answers.items():
        assert answer == (expected_status, expected_body), label


# Names of people and places of one organization; none may appear in the other's answers.
_NAMES_A = ["Tara Quinn", "Casey Cole", "Main clinic", "tara@alpha.example"]
_NAMES_B = ["Bea Beta", "Gale Beta", "Beta clinic", "bea@beta.example"]


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.authenticated], ids=lambda e: e.name
)
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.role)
async def test_unfiltered_answers_hold_nothing_foreign_or_out_of_scope(
    app_and_client: tuple[Any, httpx.AsyncClient],
    clinic: Clinic,
    db: Database,
    endpoint: Endpoint,
    caller: Caller,
) -> None:
    app, client = app_and_client
    await app.state.audit_writer.flush()  # the fixture's own reads, if any, first
    before = await row_counts(db)
    r = await client.request(
        endpoint.method, endpoint.path, headers=clinic.headers(caller.role), **endpoint.request
    )
    assert r.status_code == endpoint.status_for(caller.role), r.text
    # A read of PHI is audited by the background writer (infra/audit_writer.py), whenever it
    # flushes: after a read, the audit log aside, nothing changed; after a refusal, nothing at all.
    await app.state.audit_writer.flush()
    if r.status_code >= 400:
        assert await row_counts(db) == before
    elif not endpoint.writes:
        assert _without_audit(await row_counts(db)) == _without_audit(before)
    foreign_names = _NAMES_A if caller.role == "admin_b" else _NAMES_B
    for value in [*caller.foreign.values(), *foreign_names]:
        assert value not in r.text
    if caller.out_of_scope is not None:
        # The other therapist's id may show on a session of a shared caseload client; their client
        # and their session may not.
        assert caller.out_of_scope["client"] not in r.text
        assert caller.out_of_scope["session"] not in r.text


def _without_audit(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if not k.startswith("audit_")}


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def all_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers: the operations of its OpenAPI document (which include
    the routers added with include_router) and the top-level routes, documented or not."""
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in _HTTP_METHODS
    }
    for route in app.routes:
        if isinstance(route, APIRoute | Route):
            routes |= {(method, route.path) for method in route.methods or ()}
    return routes


def test_every_route_is_in_the_security_table() -> None:
    """A new route fails here until it is added to tests/security/endpoints.py."""
    app: FastAPI = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    routes = all_routes(app)
    # The enumeration sees routes added with include_router (this FastAPI version keeps them behind
    # an _IncludedRouter entry of app.routes, not as APIRoute entries).
    assert {("POST", "/sessions/hold"), ("GET", "/admin/therapists"), ("GET", "/board")} <= routes

    def covered(method: str, path: str) -> bool:
        # A row names a concrete path (/admin/therapists/<id>); it covers the route template.
        pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        return (method, path) in UNCOVERED_ROUTES or any(
            e.method == method and pattern.match(e.path) for e in ENDPOINTS
        )

    missing = {(method, path) for method, path in routes if not covered(method, path)}
    assert missing == set(), "add these routes to tests/security/endpoints.py"
