"""Request rate limits: per user, and per client IP for requests without a valid token.

Applied in one place, an ASGI layer just inside `ServiceMiddleware`, so it covers every route that exists
now and every route added later (booking included) without a line per endpoint. A request with a bearer
token that verifies counts against its user (`sub`); any other request counts against its IP (the peer
address uvicorn reports, which honours `X-Forwarded-For` only from `--forwarded-allow-ips`). Only the
paths in `EXEMPT_PATHS` (process liveness and metrics scraping, which touch no data) are not counted.

The counting is the `limits` library's moving window: a request is let through when fewer than `limit`
requests were let through in the 60 s before it (an exact sliding window, no burst at window edges).
Requests refused with 429 are not counted, so a client that waits `Retry-After` (until its oldest
counted request leaves the window) gets in.

Counters live in Redis when `THERAPY_SCHEDULER_REDIS_URL` is set (one list of timestamps per key, read
and appended by one Lua script, so every API process shares the same budget) and in process memory
otherwise. When Redis fails the process falls back to its own counters rather than refusing or waving
through every request.

Not here: the cap on active holds per user is a booking rule (it needs the holds table, in the booking
transaction), not a request rate.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import orjson
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from therapy_scheduler.kit.envelope import error_body

log = logging.getLogger("therapy_scheduler.ratelimit")

WINDOW_SECONDS = 60
# Liveness and metrics: cheap, read no data, and polled by infrastructure from a few addresses.
EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    retry_after: int  # whole seconds, ≥ 1 when refused, 0 when allowed


def retry_after_seconds(*, reset_at: float, now: float) -> int:
    """Whole seconds from `now` until `reset_at` (when the oldest counted request leaves the window
    and one more fits), at least 1."""
    return max(1, math.ceil(reset_at - now))


@lru_cache(maxsize=64)
def _per_minute(limit: int) -> RateLimitItem:
    return RateLimitItemPerMinute(limit)


class Counter(Protocol):
    async def hit(self, key: str, limit: int) -> Decision: ...
    async def close(self) -> None: ...


class _WindowCounter:
    """A moving window of `limits` over one storage."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._window = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, limit: int) -> Decision:
        item = _per_minute(limit)
        if await self._window.hit(item, key):
            return Decision(True, limit, 0)
        stats = await self._window.get_window_stats(item, key)
        return Decision(
            False, limit, retry_after_seconds(reset_at=stats.reset_time, now=time.time())
        )


class MemoryCounter(_WindowCounter):
    """One process's counters."""

    def __init__(self) -> None:
        super().__init__(MemoryStorage())

    async def close(self) -> None:
        await self.storage.reset()


def _storage_uri(url: str) -> str:
    """`limits`' name for a Redis URL: `redis://…` → `async+redis://…`, `unix://…` →
    `async+redis+unix://…`."""
    scheme, _, rest = url.partition("://")
    return f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{url}"


class RedisCounter:
    """Counters shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self.prefix = prefix
        self._pool = redis.ConnectionPool.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        # `connection_pool` is a documented option of RedisStorage; its type hints cover only scalars.
        storage = RedisStorage(
            _storage_uri(url),
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self._shared = _WindowCounter(storage)
        self._fallback = MemoryCounter()
        self._failing = False

    async def hit(self, key: str, limit: int) -> Decision:
        try:
            decision = await self._shared.hit(key, limit)
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "rate limit store unavailable, using local counters: %s", type(exc).__name__
                )
                self._failing = True
            return await self._fallback.hit(key, limit)
        self._failing = False
        return decision

    async def close(self) -> None:
        await self._pool.aclose()
        await self._fallback.close()


class TokenSubject(Protocol):
    async def __call__(self, token: str) -> str | None:
        """The verified subject of a bearer token, or None when it does not verify."""


class RateLimitMiddleware:
    """Counts each request against its user or its IP and answers 429 RATE_LIMITED when over."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        counter: Counter,
        subject: TokenSubject,
        per_user: int | None,
        per_ip: int | None,
    ) -> None:
        self.app = app
        self.counter = counter
        self.subject = subject
        self.per_user = per_user
        self.per_ip = per_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.per_user is None and self.per_ip is None):
            await self.app(scope, receive, send)
            return
        if scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        key, limit, kind = await self._bucket(scope)
        if limit is not None:
            decision = await self.counter.hit(key, limit)
            if not decision.allowed:
                await self._refuse(scope, send, decision, kind)
                return
        await self.app(scope, receive, send)

    async def _bucket(self, scope: Scope) -> tuple[str, int | None, str]:
        token = _bearer(scope)
        if token is not None:
            user = await self.subject(token)
            if user is not None:
                return f"u:{user}", self.per_user, "user"
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return f"ip:{address}", self.per_ip, "ip"

    async def _refuse(self, scope: Scope, send: Send, decision: Decision, kind: str) -> None:
        request_id = scope.get("state", {}).get("request_id")
        body = orjson.dumps(
            error_body(
                code="RATE_LIMITED",
                message=f"Too many requests; retry in {decision.retry_after} s",
                request_id=request_id,
                details={"limit": decision.limit, "window_seconds": WINDOW_SECONDS, "per": kind},
            )
        )
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(decision.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def make_counter(redis_url: str | None, prefix: str) -> Counter:
    return RedisCounter(redis_url, prefix) if redis_url else MemoryCounter()
