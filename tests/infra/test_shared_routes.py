"""Apps share the features' routes, included once per process (app.py, docs/DECISIONS.md "Layout"):
each app still serves its own database and state, and its OpenAPI document is the one a plain
inclusion of the routers makes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
from fastapi.routing import _IncludedRouter, iter_route_contexts

from tests.conftest import make_settings
from tests.fixtures import seed_clinic
from therapy_scheduler import app as app_module
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.board.router import install_board


def test_the_openapi_document_is_that_of_the_routers_included_into_the_app() -> None:
    shared = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    plain = app_module._fastapi()
    app_module._install_operational_routes(plain)
    for router in app_module.FEATURE_ROUTERS:
        plain.include_router(router)
    install_board(plain)
    assert shared.openapi() == plain.openapi()
    assert [type(r) for r in shared.routes] == [type(r) for r in plain.routes]


def _example_path(template: str) -> str:
    """A concrete path of a route template: each parameter filled in."""
    return re.sub(r"\{[^}:]+:path\}", "a/b", re.sub(r"\{[^}:]+\}", "x1", template))


def test_no_path_is_served_by_two_groups_of_routes() -> None:
    """The routers are tried busiest first (app.py, FEATURE_ROUTERS): an order that only decides how
    soon a request's route is found as long as no path of one group of routes (the operational
    routes, each feature router, the board) is matched by a route of another."""
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    # The operational routes, each feature router, then the board's routes.
    groups: list[list[tuple[str, re.Pattern[str]]]] = [[]]
    for route in app.router.routes:
        contexts = [
            (c.path_format, c.path_regex) for c in iter_route_contexts([route]) if c.path_format
        ]
        if isinstance(route, _IncludedRouter):
            groups.append(contexts)
            groups.append([])
        else:
            groups[-1].extend(contexts)
    groups = [g for g in groups if g]
    assert len(groups) == len(app_module.FEATURE_ROUTERS) + 2  # the operational routes, the board
    for i, group in enumerate(groups):
        others = [pattern for j, g in enumerate(groups) if j != i for _, pattern in g]
        for template, _ in group:
            path = _example_path(template)
            assert not [p.pattern for p in others if p.match(path)], template


async def test_two_apps_serve_their_own_databases(tmp_path: Path, sqlite_template: Path) -> None:
    urls = []
    for name in ("seeded", "empty"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(sqlite_template, path)
        urls.append(f"sqlite+aiosqlite:///{path}")
    seeded_settings, empty_settings = (make_settings(u) for u in urls)
    seeded, empty = create_app(seeded_settings), create_app(empty_settings)
    try:
        clinic = await seed_clinic(seeded.state.db, seeded_settings)
        for app, status in ((seeded, 200), (empty, 401), (seeded, 200)):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                r = await client.get("/get-sessions-optimized", headers=clinic.headers("admin"))
            assert r.status_code == status, r.text
    finally:
        await close_app(seeded)
        await close_app(empty)
