"""The board's page and files as served by the app: no token needed, strict headers, no inline code."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from therapy_scheduler.board.router import CONTENT_SECURITY_POLICY, STATIC_DIR

EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def test_page_needs_no_token_and_carries_strict_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/board")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == EXPECTED_CSP == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    # The service's privacy headers stay: nothing of the board is kept by a cache.
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Authorization"
    assert response.headers["x-request-id"]
    assert response.text == (STATIC_DIR / "index.html").read_text()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/board/static/js/main.js", "text/javascript; charset=utf-8"),
        ("/board/static/js/api.js", "text/javascript; charset=utf-8"),
        ("/board/static/board.css", "text/css; charset=utf-8"),
        ("/board/static/favicon.svg", "image/svg+xml; charset=utf-8"),
    ],
)
async def test_assets(client: httpx.AsyncClient, path: str, media_type: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["cache-control"] == "no-store"


async def test_trailing_slash_and_missing_files(client: httpx.AsyncClient) -> None:
    slash = await client.get("/board/")
    assert slash.status_code == 308
    assert slash.headers["location"] == "/board"
    missing = await client.get("/board/static/js/nope.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"
    escape = await client.get("/board/static/../router.py")
    assert escape.status_code == 404


async def test_board_is_not_in_the_api_description(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/board")]


def test_no_inline_code_and_no_data_in_browser_storage() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [""]  # one module script, with src, and nothing inline
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="/board/static/js/main.js">'
    ]
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    assert not re.search(r"\sstyle=", html)
    code = {p.name: p.read_text() for p in Path(STATIC_DIR, "js").glob("*.js")}
    assert sorted(code) == [
        "api.js",
        "booking.js",
        "dom.js",
        "forecast.js",
        "grid.js",
        "main.js",
        "session.js",
        "time.js",
    ]
    for name, text in code.items():
        assert "innerHTML" not in text, name
        assert "localStorage" not in text, name
        assert "document.cookie" not in text, name
        assert "eval(" not in text, name
    # sessionStorage holds the token only, and only when the user asks for it.
    uses = [
        line.strip()
        for text in code.values()
        for line in text.splitlines()
        if "sessionStorage" in line
    ]
    assert uses == [
        "if (remember) sessionStorage.setItem(TOKEN_KEY, token);",
        "else sessionStorage.removeItem(TOKEN_KEY);",
        "sessionStorage.removeItem(TOKEN_KEY);",
        "const saved = sessionStorage.getItem(TOKEN_KEY);",
    ]
