"""Apps share the features' routes, included once per process (app.py, docs/DECISIONS.md "Layout"):
each app still serves its own database and state, and its OpenAPI document is the one a plain
inclusion of the routers makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.fixtures import seed_clinic
from therapy_scheduler import app as app_module
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.board.router import install_board


def test_the_openapi_document_is_that_of_the_routers_included_into_the_app() -> None:
    shared = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    plain = app_module._fastapi()
    app_module._install_operational_routes(plain)
    for router in app_module._BEFORE_BOARD:
        plain.include_router(router)
    install_board(plain)
    for router in app_module._AFTER_BOARD:
        plain.include_router(router)
    assert shared.openapi() == plain.openapi()
    assert [type(r) for r in shared.routes] == [type(r) for r in plain.routes]


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
