"""A small, short-lived server-side cache with per-namespace invalidation.

In-process by default; Redis (`THERAPY_SCHEDULER_REDIS_URL`) when several API processes must share it.
Invalidation bumps a namespace version that is part of every key, so stale entries are never read again
and simply age out. A Redis failure degrades to "no cache", never to an error.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import orjson

from therapy_scheduler.config import Settings

log = logging.getLogger("therapy_scheduler.cache")


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, ttl: float) -> None: ...
    async def version(self, namespace: str) -> int: ...
    async def invalidate(self, namespace: str) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    def __init__(self, max_entries: int = 2048) -> None:
        self._entries: dict[str, tuple[float, Any]] = {}
        self._versions: dict[str, int] = {}
        self._max = max_entries

    async def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= self._max:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= self._max:
                self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    async def version(self, namespace: str) -> int:
        return self._versions.get(namespace, 0)

    async def invalidate(self, namespace: str) -> None:
        self._versions[namespace] = self._versions.get(namespace, 0) + 1

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self._redis.get(f"ts:cache:{key}")
        except Exception as exc:
            log.warning("redis get failed: %s", type(exc).__name__)
            return None
        return None if raw is None else orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        try:
            await self._redis.set(f"ts:cache:{key}", orjson.dumps(value), px=int(ttl * 1000))
        except Exception as exc:
            log.warning("redis set failed: %s", type(exc).__name__)

    async def version(self, namespace: str) -> int:
        try:
            raw = await self._redis.get(f"ts:version:{namespace}")
        except Exception:
            return -1  # unknown version: a key nobody writes to, i.e. no caching
        return int(raw or 0)

    async def invalidate(self, namespace: str) -> None:
        try:
            await self._redis.incr(f"ts:version:{namespace}")
        except Exception as exc:
            log.warning("redis invalidate failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(settings: Settings) -> Cache:
    return RedisCache(settings.redis_url) if settings.redis_url else MemoryCache()
