"""Request rate limits (docs/API.md): per user, and per client IP for requests without a valid token.

Applied in one place, by `ServiceMiddleware` (after its own checks of the request, before the router),
so it covers every route that exists now and every route added later (booking included) without a
line per endpoint. A request with a bearer token that verifies counts against its user (`sub`); any
other request counts against its IP (the peer address uvicorn reports, which honours
`X-Forwarded-For` only from `--forwarded-allow-ips`). Only the paths in `EXEMPT_PATHS` (process
liveness and metrics scraping, which touch no data) are not counted.

The window is a sliding-window counter (the current fixed minute plus the previous minute weighted by how
much of it still overlaps the last 60 s), which smooths the double burst a plain fixed window allows at
its edges. Requests refused with 429 are not counted, so a client that waits `Retry-After` gets in.

Counters live in Redis when `THERAPY_SCHEDULER_REDIS_URL` is set (one Lua script: read, decide, INCR and
PEXPIRE atomically, on Redis's own clock, so every API process shares the same budget) and in process
memory otherwise. When Redis fails the process falls back to its own counters rather than refusing or
waving through every request.

Not here: the cap on active holds per user is a booking rule (it needs the holds table, in the booking
transaction), not a request rate.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from therapy_scheduler.infra.client import client_address
from therapy_scheduler.kit.envelope import error_body

log = logging.getLogger("therapy_scheduler.ratelimit")

WINDOW_MS = 60_000
# Liveness and metrics: cheap, read no data, and polled by infrastructure from a few addresses.
EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    retry_after: int  # whole seconds, ≥ 1 when refused, 0 when allowed


def retry_after_seconds(
    *, limit: int, window_ms: int, elapsed_ms: int, current: int, previous: int
) -> int:
    """Seconds until one more request fits: first while the previous window's weight fades, else in
    the next window once this window's weight has faded enough."""
    if current + 1 <= limit and previous > 0:
        wait_ms = window_ms - elapsed_ms - (limit - 1 - current) * window_ms / previous
    else:
        into_next = window_ms * (1 - (limit - 1) / current) if current > 0 else 0.0
        wait_ms = (window_ms - elapsed_ms) + max(0.0, into_next)
    return max(1, math.ceil(wait_ms / 1000))


def _decide(*, limit: int, window_ms: int, elapsed_ms: int, current: int, previous: int) -> bool:
    estimate = previous * (window_ms - elapsed_ms) / window_ms + current
    return estimate + 1 <= limit


class Counter(Protocol):
    async def hit(self, key: str, limit: int) -> Decision: ...
    async def close(self) -> None: ...


class MemoryCounter:
    """One process's counters: {key: (window index, count in it, count in the window before)}."""

    def __init__(self, window_ms: int = WINDOW_MS, max_keys: int = 100_000) -> None:
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._counts: dict[str, tuple[int, int, int]] = {}

    async def hit(self, key: str, limit: int) -> Decision:
        now_ms = int(time.time() * 1000)
        index, elapsed = divmod(now_ms, self.window_ms)
        stored_index, current, previous = self._counts.get(key, (index, 0, 0))
        if stored_index == index - 1:
            current, previous = 0, current
        elif stored_index != index:
            current, previous = 0, 0
        args = {
            "limit": limit,
            "window_ms": self.window_ms,
            "elapsed_ms": elapsed,
            "current": current,
            "previous": previous,
        }
        if not _decide(**args):
            self._counts[key] = (index, current, previous)
            return Decision(False, limit, retry_after_seconds(**args))
        if len(self._counts) >= self.max_keys and key not in self._counts:
            self._prune(index)
        self._counts[key] = (index, current + 1, previous)
        return Decision(True, limit, 0)

    def _prune(self, index: int) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}
        if len(self._counts) >= self.max_keys:
            self._counts.clear()

    async def close(self) -> None:
        self._counts.clear()


# KEYS[1]: the counter's base name. ARGV: limit, window in ms.
# Returns {allowed (0|1), current, previous, elapsed_ms}; Redis's clock names the window, so every
# process agrees on it.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local index = math.floor(now_ms / window)
local elapsed = now_ms - index * window
local cur_key = KEYS[1] .. ':' .. index
local current = tonumber(redis.call('GET', cur_key) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (index - 1)) or '0')
if previous * (window - elapsed) / window + current + 1 > limit then
  return {0, current, previous, elapsed}
end
current = redis.call('INCR', cur_key)
if current == 1 then
  redis.call('PEXPIRE', cur_key, window * 2 + 1000)
end
return {1, current, previous, elapsed}
"""


class RedisCounter:
    """Counters shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, prefix: str, window_ms: int = WINDOW_MS) -> None:
        import redis.asyncio as redis

        self.window_ms = window_ms
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._redis.register_script(_SLIDING_WINDOW)
        self._fallback = MemoryCounter(window_ms)
        self._failing = False

    async def hit(self, key: str, limit: int) -> Decision:
        try:
            allowed, current, previous, elapsed = await self._script(
                keys=[f"{self.prefix}:{{{key}}}"], args=[limit, self.window_ms]
            )
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "rate limit store unavailable, using local counters: %s", type(exc).__name__
                )
                self._failing = True
            return await self._fallback.hit(key, limit)
        self._failing = False
        if allowed:
            return Decision(True, limit, 0)
        wait = retry_after_seconds(
            limit=limit,
            window_ms=self.window_ms,
            elapsed_ms=int(elapsed),
            current=int(current),
            previous=int(previous),
        )
        return Decision(False, limit, wait)

    async def close(self) -> None:
        await self._redis.aclose()


class TokenSubject(Protocol):
    async def __call__(self, token: str) -> str | None:
        """The verified subject of a bearer token, or None when it does not verify."""


class RateLimits:
    """Counts each request against its user or its IP and answers 429 RATE_LIMITED when over.
    Applied by `ServiceMiddleware` (infra/http.py) inside its own layer, after its checks of the
    request; `RateLimitMiddleware` is the same as an ASGI layer of its own."""

    def __init__(
        self,
        *,
        counter: Counter,
        subject: TokenSubject,
        per_user: int | None,
        per_ip: int | None,
    ) -> None:
        self.counter = counter
        self.subject = subject
        self.per_user = per_user
        self.per_ip = per_ip
        self.active = per_user is not None or per_ip is not None

    async def refused(self, scope: Scope, send: Send) -> bool:
        """Whether the request was over its limit (its 429 then sent on `send`)."""
        if not self.active or scope["path"] in EXEMPT_PATHS:
            return False
        key, limit, kind = await self._bucket(scope)
        if limit is None:
            return False
        decision = await self.counter.hit(key, limit)
        if decision.allowed:
            return False
        await self._refuse(scope, send, decision, kind)
        return True

    async def _bucket(self, scope: Scope) -> tuple[str, int | None, str]:
        token = _bearer(scope)
        if token is not None:
            user = await self.subject(token)
            if user is not None:
                return f"u:{user}", self.per_user, "user"
        return f"ip:{client_address(scope) or 'unknown'}", self.per_ip, "ip"

    async def _refuse(self, scope: Scope, send: Send, decision: Decision, kind: str) -> None:
        request_id = scope.get("state", {}).get("request_id")
        body = orjson.dumps(
            error_body(
                code="RATE_LIMITED",
                message=f"Too many requests; retry in {decision.retry_after} s",
                request_id=request_id,
                details={"limit": decision.limit, "window_seconds": WINDOW_MS // 1000, "per": kind},
            )
        )
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(decision.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """`RateLimits` as an ASGI layer of its own (the service applies them in `ServiceMiddleware`)."""

    def __init__(self, app: ASGIApp, **limits: Any) -> None:
        self.app = app
        self.limits = RateLimits(**limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not await self.limits.refused(scope, send):
            await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def make_counter(redis_url: str | None, prefix: str) -> Counter:
    return RedisCounter(redis_url, prefix) if redis_url else MemoryCounter()
