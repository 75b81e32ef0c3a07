"""Reads on a streaming replica without reading the past (docs/DEPLOYMENT.md, "Read replicas";
docs/DECISIONS.md, "Replica reads").

- `ReplicaHealth` watches the replica (reachable? how far behind the primary, in seconds?) and takes
  it out of use when it is down or lags more than `replica_max_lag_seconds`, and back when it
  recovers; a metric and a log line say so.
- `Freshness` is what one request needs from the replica: the WAL position of its caller's last
  write (read-your-writes) and the caller's identity and scope as loaded from the primary. The
  replica serves the request only when it has replayed that position and shows the same caller;
  otherwise the request reads on the primary.
- `WritePositions` remembers, per user and in process memory, the commit position of their last
  write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from therapy_scheduler.infra.metrics import Metrics

log = logging.getLogger("therapy_scheduler.replica")

# WAL positions as byte offsets (pg_lsn - '0/0'), comparable as integers.
PRIMARY_POSITION = text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
REPLAY_POSITION = "(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
# After a commit: the end of everything inserted into the WAL so far, so at or past the commit record
# (pg_current_wal_lsn() is only the position written out, which can be behind it).
COMMIT_POSITION = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


@dataclass
class CallerCheck:
    """A statement that reads the caller (and their scope) and the row the primary returned for it."""

    statement: Any
    params: dict[str, Any]
    expected: tuple[Any, ...]


@dataclass
class Freshness:
    """What one request needs from the replica (see the module docstring)."""

    user_id: uuid.UUID | None = None
    min_position: int = 0
    caller: CallerCheck | None = None
    # The replica passed the check for this request (it only moves forward): later reads skip it.
    verified: bool = False


_FRESHNESS: ContextVar[Freshness | None] = ContextVar("replica_freshness", default=None)


def current_freshness() -> Freshness | None:
    return _FRESHNESS.get()


class FreshnessMiddleware:
    """Gives every HTTP request its own `Freshness` (reset afterwards, so nothing carries over)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _FRESHNESS.set(Freshness())
        try:
            await self.app(scope, receive, send)
        finally:
            _FRESHNESS.reset(token)


class WritePositions:
    """The commit position of each user's last write, in this process (LRU-bounded)."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._positions: OrderedDict[uuid.UUID, int] = OrderedDict()

    def get(self, user_id: uuid.UUID) -> int:
        return self._positions.get(user_id, 0)

    def record(self, user_id: uuid.UUID, position: int) -> None:
        self._positions[user_id] = max(position, self._positions.get(user_id, 0))
        self._positions.move_to_end(user_id)
        if len(self._positions) > self._size:
            self._positions.popitem(last=False)


class ReplicaHealth:
    """Whether the replica is in use, from periodic checks (`run`) and from failed connections.

    Lag is measured in seconds of the primary's history: every check samples the primary's WAL
    position; the lag is how long ago the primary first wrote something the replica has not
    replayed yet (0 when it has replayed all the primary had written at the last sample). An idle
    primary therefore never makes a healthy replica look late, unlike
    `now() - pg_last_xact_replay_timestamp()`.
    """

    def __init__(self, replica: AsyncEngine, primary: AsyncEngine, max_lag_seconds: float) -> None:
        self.replica = replica
        self.primary = primary
        self.max_lag_seconds = max_lag_seconds
        self.in_use = True
        self.replayed = 0  # the highest replay position seen on the replica
        self.lag_seconds = 0.0
        self.reason = ""
        self.metrics: Metrics | None = None
        self._samples: deque[tuple[float, int]] = deque()

    def attach(self, metrics: Metrics) -> None:
        self.metrics = metrics
        metrics.replica_in_use.set(1 if self.in_use else 0)

    def saw_replayed(self, position: int) -> None:
        self.replayed = max(self.replayed, position)

    def fell_back(self, reason: str) -> None:
        """A read that went to the primary instead of the replica, and why."""
        if self.metrics is not None:
            self.metrics.replica_fallbacks.labels(reason).inc()

    def mark_down(self, error: BaseException) -> None:
        self._set(False, f"unreachable ({type(error).__name__})")

    def _set(self, in_use: bool, reason: str) -> None:
        if in_use != self.in_use:
            if in_use:
                log.warning(
                    "read replica back in use: lag %.1f s (limit %.1f s)",
                    self.lag_seconds,
                    self.max_lag_seconds,
                )
            else:
                log.warning("read replica taken out of use, reads go to the primary: %s", reason)
        self.in_use = in_use
        self.reason = "" if in_use else reason
        if self.metrics is not None:
            self.metrics.replica_in_use.set(1 if in_use else 0)
            self.metrics.replica_lag.set(self.lag_seconds)

    async def check(self) -> bool:
        """One health check: sample the primary, read the replica's replay position, decide."""
        now = time.monotonic()
        try:
            async with self.primary.connect() as conn:
                primary = int((await conn.execute(PRIMARY_POSITION)).scalar_one())
        except Exception as exc:  # the primary's own faults are not the replica's
            log.warning("replica check skipped, the primary is unreachable: %s", type(exc).__name__)
            return self.in_use
        self._samples.append((now, primary))
        try:
            async with self.replica.connect() as conn:
                replayed = (await conn.execute(text(f"SELECT {REPLAY_POSITION}"))).scalar_one()
        except Exception as exc:
            self.mark_down(exc)
            return False
        if replayed is None:  # not a standby: a promoted replica serves what it has
            replayed = primary
        self.saw_replayed(int(replayed))
        while self._samples and self._samples[0][1] <= self.replayed:
            self._samples.popleft()
        self.lag_seconds = now - self._samples[0][0] if self._samples else 0.0
        if self.lag_seconds > self.max_lag_seconds:
            self._set(
                False,
                f"lagging {self.lag_seconds:.1f} s behind the primary "
                f"(limit {self.max_lag_seconds:.1f} s)",
            )
        else:
            self._set(True, "")
        return self.in_use

    async def run(self, interval: float) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            with contextlib.suppress(Exception):
                await self.check()
            await asyncio.sleep(interval)
