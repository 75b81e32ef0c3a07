"""The one ASGI layer of the service's own that every request passes: request id, size limit,
JSON-only bodies, rate limits, the replica freshness of the request, privacy headers, metrics,
access log, and the last-resort 500/503 (docs/DECISIONS.md, "The hot read path")."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from therapy_scheduler.infra.metrics import Metrics
from therapy_scheduler.infra.ratelimit import RateLimits
from therapy_scheduler.infra.replica import begin_request, end_request
from therapy_scheduler.infra.route_labels import RouteLabels
from therapy_scheduler.kit.envelope import error_body

log = logging.getLogger("therapy_scheduler.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# Every response may carry personal data or depend on who asks: nothing may be kept by a browser or a
# shared cache, and any cache must key on the Authorization header.
_PRIVACY_HEADERS = [(b"cache-control", b"no-store"), (b"vary", b"Authorization")]
_BODY_METHODS = {"POST", "PUT", "PATCH"}

# Generated request ids: 32 hex digits laid out as a random (version 4) UUID's, from a generator of
# this process's own, seeded from the system's randomness at start and in every forked child. They
# correlate log lines and answers; nothing relies on their being unguessable. `uuid.uuid4()` asked
# the kernel for 16 bytes per request: a system call that also handed the interpreter's lock to the
# database threads (docs/PERFORMANCE.md, "What limits each figure").
_ids = random.Random()  # noqa: S311 - correlation ids, not secrets
os.register_at_fork(after_in_child=_ids.seed)
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    return f"{_ids.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"


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


class ServiceMiddleware:
    """The service's checks and bookkeeping around every HTTP request, in one layer: one coroutine
    and one `send` wrapper per request instead of three (docs/DECISIONS.md, "The hot read path")."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: Metrics,
        labels: RouteLabels,
        limits: RateLimits,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.labels = labels
        self.limits = limits
        # The metrics' children by label values (`labels()` checks and locks on every call).
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        freshness = begin_request()
        started = time.perf_counter()
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
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
            if self.limits.active and await self.limits.refused(scope, send_wrapper):
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
            end_request(freshness)
            template = self.labels(scope, path, root_path)
            self._observe(template, method, str(status_holder["status"]), started, request_id)

    def _observe(
        self, template: str, method: str, status: str, started: float, request_id: str
    ) -> None:
        """The request's metrics and its access-log line (never its path: its route's template)."""
        elapsed = time.perf_counter() - started
        counted = self._counted.get((template, method, status))
        if counted is None:
            counted = self.metrics.requests.labels(template, method, status)
            self._counted[(template, method, status)] = counted
        counted.inc()
        timed = self._timed.get((template, method))
        if timed is None:
            timed = self._timed[(template, method)] = self.metrics.latency.labels(template, method)
        timed.observe(elapsed)
        log.info(
            "%s %s %s %.1fms request_id=%s", method, template, status, elapsed * 1000, request_id
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
