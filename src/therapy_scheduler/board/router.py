"""Serves the schedule board: `/board` (the page) and `/board/static/...` (its CSS and ES modules).

The page holds no data of its own; every schedule call it makes carries the user's bearer token, so
loading the page needs none. Its responses carry a strict Content-Security-Policy (scripts, styles and
API calls from this origin only, nothing inline, no framing)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Served as JavaScript whatever the host's /etc/mime.types says (module scripts need a JS type).
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


class _BoardAssets(StaticFiles):
    """StaticFiles with the board's security headers and fixed media types."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-type"
                ]
                path: str = scope.get("path", "")
                suffix = Path(path).suffix.lower()
                original = dict(message.get("headers", [])).get(b"content-type", b"")
                media = _MEDIA_TYPES.get(suffix)
                headers.append(
                    (b"content-type", f"{media}; charset=utf-8".encode() if media else original)
                )
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def _page() -> Response:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


def install_board(app: FastAPI) -> None:
    """Mount the board on `app`: the page at `/board`, its files under `/board/static/`."""

    @app.get("/board", include_in_schema=False)
    async def board() -> Response:
        return _page()

    @app.get("/board/", include_in_schema=False)
    async def board_slash() -> Response:
        return RedirectResponse("/board", status_code=308)

    app.mount("/board/static", _BoardAssets(directory=STATIC_DIR), name="board-static")
