"""The outer ASGI layer every request passes: request id, size limit, JSON-only bodies, privacy
headers, metrics, access log, and the last-resort 500/503."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.kit.envelope import error_body

log = logging.getLogger("therapy_scheduler.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# Every response may carry personal data or depend on who asks: nothing may be kept by a browser or a
# shared cache, and any cache must key on the Authorization header.
_PRIVACY_HEADERS = [(b"cache-control", b"no-store"), (b"vary", b"Authorization")]
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class _BodyTooLarge(Exception):
    pass


# SQLSTATEs that mean "the database cannot serve this now", not "this request is wrong":
# connection exceptions (class 08), shutdown / cannot connect now (57P01-57P03), too many connections,
# statement or lock timeout (57014 query_canceled, 55P03 lock_not_available).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014", "55P03"})


_NUL_MESSAGE = "Invalid request: text may not contain the NUL character (U+0000)"


class _NulInBody(Exception):
    pass


def _nul_details(where: str) -> dict[str, Any]:
    return {"fields": [{"field": where, "message": "contains U+0000", "type": "value_error"}]}


def _holds_nul(body: bytes) -> bool:
    """Whether a JSON body has U+0000 in a key or a string (invalid JSON is left to the router)."""
    try:
        stack = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        return False
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list):
            stack += value
    return False


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def is_database_outage(exc: BaseException) -> bool:
    """Whether an exception means the database is unreachable, shutting down, overloaded or too slow
    (→ 503 DATABASE_UNAVAILABLE with Retry-After) rather than a bug (→ 500). Follows the cause chain,
    since drivers wrap socket errors and SQLAlchemy wraps driver errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeout | OperationalError | ConnectionError | TimeoutError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        state = _sqlstate(current)
        if state is not None and (state.startswith("08") or state in _UNAVAILABLE_SQLSTATES):
            return True
        current = current.__cause__ or current.__context__
    return False


UNMATCHED = "unmatched"


class RouteLabels:
    """The route template a request was routed to, for the metrics and the access log: a path of the
    router's table (`/admin/therapists/{therapist_id}`, `/board/static/{path}`), never a raw path, so
    there are as many labels as routes. `unmatched` only for a path no route or mount matches.

    FastAPI's router names its own routes in `scope["route"]`; one dict lookup turns that into the
    template, include prefix and all. It names neither plain Starlette routes (`/openapi.json`,
    `/docs`, `/redoc`) nor mounts (`/board/static`), nor the route a trailing-slash redirect leads to,
    and nothing is routed yet when a request is refused before the router (413, 415, 429). Only those
    requests are matched against the table, in the router's order and by its rule: the first route
    whose pattern and method match, else the first whose pattern matches (the router's 405), else the
    same path with its trailing slash toggled (the router's redirect)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._table: list[tuple[re.Pattern[str], frozenset[str] | None, str]] | None = None
        self._named: dict[int, str] = {}

    def _build(self) -> list[tuple[re.Pattern[str], frozenset[str] | None, str]]:
        # Built at the first request, when every route is in place: every route and mount in the
        # order the router tries them, included routers expanded with their prefixes (the listing
        # FastAPI makes its OpenAPI document from). A mount has no methods: it matches any.
        table: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = []
        templates: dict[int, set[str]] = {}
        for context in iter_route_contexts(self.router.routes):
            template = context.path_format
            if not template:
                continue
            methods = context.methods
            table.append(
                (context.path_regex, frozenset(methods) if methods is not None else None, template)
            )
            templates.setdefault(id(context.original_route), set()).add(template)
        # A route included twice (two prefixes) is one object with two templates: match it instead.
        self._named = {key: names.pop() for key, names in templates.items() if len(names) == 1}
        self._table = table
        return table

    def __call__(self, scope: Scope, path: str, root_path: str) -> str:
        table = self._table if self._table is not None else self._build()
        route = scope.get("route")
        if route is not None:
            named = self._named.get(id(route))
            if named is not None:
                return named
        method: str = scope["method"]
        route_path = _route_path(path, root_path)
        partial = None
        for pattern, methods, template in table:
            if pattern.match(route_path):
                if methods is None or method in methods:
                    return template
                if partial is None:
                    partial = template
        if partial is not None:
            return partial
        if self.router.redirect_slashes and route_path != "/":
            other = route_path.rstrip("/") if route_path.endswith("/") else route_path + "/"
            for pattern, _, template in table:
                if pattern.match(other):
                    return template
        return UNMATCHED


def _route_path(path: str, root_path: str) -> str:
    """The path the router matches: without the root path the app is served under (Starlette's rule)."""
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


class ServiceMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics, labels: RouteLabels
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.labels = labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        method: str = scope["method"]
        status_holder = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                raw = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"cache-control", b"vary", b"x-request-id")
                ]
                raw += [*_PRIVACY_HEADERS, (b"x-request-id", request_id.encode())]
                message["headers"] = raw
            await send(message)

        async def reject(
            status: int,
            code: str,
            text: str,
            extra: list[Any] | None = None,
            details: dict[str, Any] | None = None,
        ) -> None:
            body = orjson.dumps(
                error_body(code=code, message=text, request_id=request_id, details=details)
            )
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *(extra or []),
                    ],
                }
            )
            await send_wrapper({"type": "http.response.body", "body": body})

        try:
            # PostgreSQL text cannot hold U+0000: refuse it here, once, for every parameter and body.
            if b"%00" in scope.get("query_string", b""):
                await reject(400, "VALIDATION_ERROR", _NUL_MESSAGE, details=_nul_details("query"))
                return
            if method in _BODY_METHODS:
                length = headers.get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                    await reject(413, "PAYLOAD_TOO_LARGE", "Request body exceeds the size limit")
                    return
                content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
                has_body = length not in (None, b"0") or b"transfer-encoding" in headers
                if has_body and content_type != b"application/json":
                    await reject(
                        415, "UNSUPPORTED_MEDIA_TYPE", "Request body must be application/json"
                    )
                    return
                # Read the whole (bounded) body before the app sees it: a framework that reads the
                # body itself would turn an error raised from `receive` into its own 400.
                try:
                    receive = await self._buffered(receive)
                except _BodyTooLarge:
                    await reject(413, "PAYLOAD_TOO_LARGE", "Request body exceeds the size limit")
                    return
                except _NulInBody:
                    await reject(
                        400, "VALIDATION_ERROR", _NUL_MESSAGE, details=_nul_details("body")
                    )
                    return
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if status_holder["started"]:
                raise
            if is_database_outage(exc):
                log.warning(
                    "database unavailable request_id=%s error=%s", request_id, type(exc).__name__
                )
                await reject(
                    503,
                    "DATABASE_UNAVAILABLE",
                    "The database is unavailable; retry shortly",
                    [(b"retry-after", b"2")],
                )
            else:
                log.exception("unhandled error request_id=%s", request_id)
                await reject(500, "INTERNAL_ERROR", "Internal server error")
        finally:
            template = self.labels(scope, path, root_path)
            elapsed = time.perf_counter() - started
            status = str(status_holder["status"])
            self.metrics.requests.labels(template, method, status).inc()
            self.metrics.latency.labels(template, method).observe(elapsed)
            log.info(
                "%s %s %s %.1fms request_id=%s",
                method,
                template,
                status,
                elapsed * 1000,
                request_id,
            )

    async def _buffered(self, receive: Receive) -> Receive:
        """Receive the whole body (at most `max_body_bytes`, whatever Content-Length claims) and
        return a `receive` that replays it, then passes through (e.g. `http.disconnect`)."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending: list[Message] = [message]
                break
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(body)
            if not message.get("more_body", False):
                whole = b"".join(chunks)
                if b"\\u0000" in whole and _holds_nul(whole):
                    raise _NulInBody
                pending = [{"type": "http.request", "body": whole, "more_body": False}]
                break

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replay
