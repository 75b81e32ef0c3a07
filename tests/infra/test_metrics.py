"""`/metrics`: every request is counted under the route template the router sent it to (documentation
pages, the board's static files and routes with ids alike); `unmatched` only for paths no route or
mount matches. Who may read it: `THERAPY_SCHEDULER_METRICS_ACCESS`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.conftest import make_settings
from tests.fixtures import C1, T1, Clinic
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.config import Settings

Counts = dict[tuple[str, str, str], float]


async def request_counts(client: httpx.AsyncClient) -> Counts:
    """therapy_scheduler_requests_total by (route, method, status), as /metrics shows it."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    counts: Counts = {}
    for family in text_string_to_metric_families(r.text):
        if family.name != "therapy_scheduler_requests":
            continue
        for sample in family.samples:
            if sample.name == "therapy_scheduler_requests_total":
                labels = sample.labels
                counts[(labels["route"], labels["method"], labels["status"])] = sample.value
    return counts


async def test_requests_are_labelled_with_the_route_that_served_them(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    sent = [
        ("/openapi.json", {}, 200),
        ("/docs", {}, 200),
        ("/board/static/board.css", {}, 200),
        ("/board/static/no-such-file.js", {}, 404),
        ("/board", {}, 200),
        (f"/admin/therapists/{T1}", clinic.headers("admin"), 200),
        (f"/admin/clients/{C1}/caseload", clinic.headers("admin"), 200),
        ("/no-such-path", {}, 404),
        (f"/no-such-path/{T1}", {}, 404),
    ]
    for path, headers, status in sent:
        r = await client.get(path, headers=headers)
        assert r.status_code == status, (path, r.text)

    assert await request_counts(client) == {
        ("/openapi.json", "GET", "200"): 1.0,
        ("/docs", "GET", "200"): 1.0,
        ("/board/static/{path}", "GET", "200"): 1.0,
        # The mount matched; the file is missing: still the mount's template, not `unmatched`.
        ("/board/static/{path}", "GET", "404"): 1.0,
        ("/board", "GET", "200"): 1.0,
        ("/admin/therapists/{therapist_id}", "GET", "200"): 1.0,
        ("/admin/clients/{client_id}/caseload", "GET", "200"): 1.0,
        ("unmatched", "GET", "404"): 2.0,
    }


async def test_requests_the_router_answers_itself_carry_the_route(
    client: httpx.AsyncClient,
) -> None:
    """405 (a path with other methods), trailing-slash redirects, HEAD, and requests refused before
    the router (body too large, not JSON) are labelled with the route their path matches."""
    assert (await client.post("/healthz")).status_code == 405
    assert (await client.post("/docs")).status_code == 405
    assert (await client.head("/docs")).status_code == 200
    assert (await client.get("/healthz/")).status_code == 307
    assert (await client.get("/admin/therapists/")).status_code == 307
    assert (await client.get("/board/static")).status_code == 307
    too_large = await client.post(
        "/sessions/hold", content=b"{}", headers={"content-length": str(10 * 1024 * 1024)}
    )
    assert too_large.status_code == 413
    not_json = await client.post(
        "/sessions/hold", content=b"x", headers={"content-type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert (await client.post("/no-such-path/")).status_code == 404

    assert await request_counts(client) == {
        ("/healthz", "POST", "405"): 1.0,
        ("/docs", "POST", "405"): 1.0,
        ("/docs", "HEAD", "200"): 1.0,
        ("/healthz", "GET", "307"): 1.0,
        ("/admin/therapists", "GET", "307"): 1.0,
        ("/board/static/{path}", "GET", "307"): 1.0,
        ("/sessions/hold", "POST", "413"): 1.0,
        ("/sessions/hold", "POST", "415"): 1.0,
        ("unmatched", "POST", "404"): 1.0,
    }


async def test_every_documented_operation_is_labelled_with_its_documented_path(
    client: httpx.AsyncClient,
) -> None:
    """One request per operation of the OpenAPI document, ids filled in: each is counted once under
    the path the document gives (include prefixes too), none as `unmatched`."""
    spec = (await client.get("/openapi.json")).json()
    expected: dict[tuple[str, str], float] = {}
    for template, operations in spec["paths"].items():
        path = re.sub(r"\{[^}]+\}", T1, template)
        for method in operations:
            await client.request(method.upper(), path, json={} if method != "get" else None)
            expected[(template, method.upper())] = 1.0
    assert len(expected) > 60
    expected[("/openapi.json", "GET")] = 1.0

    counted: dict[tuple[str, str], float] = {}
    for (route, method, _), value in (await request_counts(client)).items():
        counted[(route, method)] = counted.get((route, method), 0.0) + value
    assert counted == expected


async def test_labels_under_a_root_path(settings: Settings) -> None:
    """Served under a path prefix (a proxy's `/api`, `--root-path`): the labels stay the app's own."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, root_path="/api")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/api/healthz")).status_code == 200
            assert (await client.get("/api/docs")).status_code == 200
            assert (await client.get("/api/board/static/board.css")).status_code == 200
            assert (await client.get("/api/no-such-path")).status_code == 404
            r = await client.get("/api/metrics")
            assert r.status_code == 200
            counts = {
                (s.labels["route"], s.labels["status"]): s.value
                for f in text_string_to_metric_families(r.text)
                if f.name == "therapy_scheduler_requests"
                for s in f.samples
                if s.name == "therapy_scheduler_requests_total"
            }
            assert counts == {
                ("/healthz", "200"): 1.0,
                ("/docs", "200"): 1.0,
                ("/board/static/{path}", "200"): 1.0,
                ("unmatched", "404"): 1.0,
            }
    finally:
        await close_app(app)


# --- who may read /metrics ----------------------------------------------------------------------

TOKEN = "m3tr1cs-t0ken-0123456789-abcdefghijklmnop"
REMOTE = ("203.0.113.7", 50000)
LOOPBACK = ("127.0.0.1", 50000)


@asynccontextmanager
async def app_with(database_url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, **overrides))
    try:
        yield app
    finally:
        await close_app(app)


async def read_metrics(
    app: Any, client: tuple[str, int] | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET /metrics from `client` (host, port); None: no address, as over a Unix socket."""
    transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/metrics", headers=headers)


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "success": False,
        "error": "Metrics may not be read by this client",
        "code": "FORBIDDEN",
        "request_id": r.headers["x-request-id"],
        "details": {},
    }


def assert_served(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE therapy_scheduler_requests_total counter" in r.text


def test_loopback_is_the_default() -> None:
    assert Settings().metrics_access == "loopback"
    assert Settings().metrics_token is None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.45.6.7", "::1", "::ffff:127.0.0.1"],
)
async def test_loopback_serves_clients_on_this_host(database_url: str, address: str) -> None:
    async with app_with(database_url) as app:
        assert_served(await read_metrics(app, (address, 50000)))


@pytest.mark.parametrize(
    "address",
    ["203.0.113.7", "10.0.0.5", "192.168.1.20", "::ffff:203.0.113.7", "2001:db8::1", None],
)
async def test_loopback_refuses_every_other_client(database_url: str, address: str | None) -> None:
    client = (address, 50000) if address else None
    async with app_with(database_url) as app:
        assert_refused(await read_metrics(app, client))
        # A bearer token does not open loopback access.
        assert_refused(await read_metrics(app, client, {"Authorization": f"Bearer {TOKEN}"}))


async def test_refused_reads_are_counted_as_403(database_url: str) -> None:
    async with app_with(database_url) as app:
        assert_refused(await read_metrics(app, REMOTE))
        assert_refused(await read_metrics(app, REMOTE))
        r = await read_metrics(app, LOOPBACK)
        assert_served(r)
        counts = {
            (s.labels["route"], s.labels["status"]): s.value
            for f in text_string_to_metric_families(r.text)
            if f.name == "therapy_scheduler_requests"
            for s in f.samples
            if s.name == "therapy_scheduler_requests_total"
        }
        assert counts == {("/metrics", "403"): 2.0}


async def test_loopback_behind_a_proxy_on_this_host(database_url: str) -> None:
    """uvicorn's proxy-header handling (on by default, trusting 127.0.0.1 and ::1): a proxy on this
    host that sets X-Forwarded-For passes on the remote address, which is refused; a client cannot
    claim to be local through the header."""
    async with app_with(database_url) as inner:
        app = ProxyHeadersMiddleware(cast(Any, inner), trusted_hosts="127.0.0.1,::1")
        assert_served(await read_metrics(app, LOOPBACK))
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        assert_refused(await read_metrics(app, LOOPBACK, forwarded))
        # The client sent "127.0.0.1" itself; the proxy appended the address it saw.
        spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}
        assert_refused(await read_metrics(app, LOOPBACK, spoofed))
        # A proxy on another host is not trusted: its header is ignored, its own address is not local.
        assert_refused(
            await read_metrics(app, ("10.0.0.5", 40000), {"X-Forwarded-For": "127.0.0.1"})
        )
        # A local proxy that sends no X-Forwarded-For makes every request look local (DEPLOYMENT.md).
        assert_served(await read_metrics(app, LOOPBACK, {}))


async def test_open_serves_everyone(database_url: str) -> None:
    async with app_with(database_url, metrics_access="open") as app:
        assert_served(await read_metrics(app, REMOTE))
        assert_served(await read_metrics(app, None))
        assert_served(await read_metrics(app, LOOPBACK))


@pytest.mark.parametrize(
    ("authorization", "served"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer  {TOKEN} ", True),
        (None, False),
        ("Bearer ", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN.upper()}", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
    ],
)
async def test_token_serves_whoever_sends_it(
    database_url: str, authorization: str | None, served: bool
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with app_with(database_url, metrics_access="token", metrics_token=TOKEN) as app:
        for client in (REMOTE, LOOPBACK):
            r = await read_metrics(app, client, headers)
            if served:
                assert_served(r)
            else:
                assert_refused(r)


def test_token_access_needs_a_long_token() -> None:
    with pytest.raises(
        ValidationError, match="needs THERAPY_SCHEDULER_METRICS_TOKEN of at least 32"
    ):
        Settings(metrics_access="token")
    with pytest.raises(
        ValidationError, match="needs THERAPY_SCHEDULER_METRICS_TOKEN of at least 32"
    ):
        Settings(metrics_access="token", metrics_token="x" * 31)
    assert Settings(metrics_access="token", metrics_token="x" * 32).metrics_access == "token"


@pytest.mark.parametrize("access", ["loopback", "open"])
def test_a_token_without_token_access_is_refused(access: str) -> None:
    with pytest.raises(ValidationError, match=f"METRICS_ACCESS is {access}, not token"):
        Settings(metrics_access=access, metrics_token=TOKEN)


def test_unknown_access_mode_is_refused() -> None:
    with pytest.raises(ValidationError, match="'open', 'loopback' or 'token'"):
        Settings(metrics_access="public")


def test_the_token_is_not_shown_with_the_settings() -> None:
    settings = Settings(metrics_access="token", metrics_token=TOKEN)
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())


async def test_openapi_declares_the_refusal(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/metrics"]["get"]["responses"]
    assert set(responses) == {"200", "403"}
    assert responses["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
