"""`/metrics`: every request is counted under the route template the router sent it to (documentation
pages, the board's static files and routes with ids alike); `unmatched` only for paths no route or
mount matches."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures import C1, T1, Clinic
from therapy_scheduler.app import create_app
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
        await app.state.cache.close()
        await app.state.db.dispose()
