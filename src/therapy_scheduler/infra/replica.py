"""Reads on a streaming replica without reading the past (docs/DEPLOYMENT.md, "Read replicas";
docs/DECISIONS.md, "Replica reads").

- `ReplicaHealth` watches the replica (reachable? how far behind the primary, in seconds?) and takes
  it out of use when it is down or lags more than `replica_max_lag_seconds`, and back when it
  recovers; a metric and a log line say so.
- `Freshness` is what one request needs from the replica: the WAL position of its caller's last
  write (read-your-writes) and the caller's identity and scope as loaded from the primary. The
  replica serves the request only when it has replayed that position and shows the same caller;
  otherwise the request reads on the primary.
- Each user's last write position is kept on the primary, in `user_write_positions`
  (models/write_position.py), so that every API process honours it: `STORE_POSITION` after each
  write's commit, `caller_position` in the statement that loads the caller from the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Uuid,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from therapy_scheduler.models import FLOOR_KEY, UserWritePosition

if TYPE_CHECKING:
    from therapy_scheduler.infra.metrics import Metrics

log = logging.getLogger("therapy_scheduler.replica")

# WAL positions as byte offsets (pg_lsn - '0/0'), comparable as integers.
PRIMARY_POSITION = text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
REPLAY_POSITION = "(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
# The end of everything inserted into the WAL so far: right after a commit, at or past the commit
# record (pg_current_wal_lsn() is only the position written out, which can be behind it).
INSERT_POSITION = "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"

# After a write's commit, on its connection (no transaction of its own: one round trip), with the
# caller's organization ($1) and id ($2): their position becomes INSERT_POSITION, never lower than a
# position a concurrent write of theirs stored; the floor row comes back at that position if a crash
# restart emptied the table (models/write_position.py). Returns the stored position.
STORE_POSITION = f"""
WITH floor AS (
    INSERT INTO user_write_positions (organization_id, user_id, position)
    VALUES ('{FLOOR_KEY}', '{FLOOR_KEY}', {INSERT_POSITION})
    ON CONFLICT DO NOTHING
)
INSERT INTO user_write_positions AS stored (organization_id, user_id, position)
VALUES ($1, $2, {INSERT_POSITION})
ON CONFLICT (organization_id, user_id)
DO UPDATE SET position = greatest(stored.position, excluded.position)
RETURNING position
"""  # noqa: S608 - constants only; the caller comes as parameters

_NO_FLOOR = 2**63 - 1


def caller_position(user_id: Any, organization_id: Any) -> Any:
    """The position the caller's reads need (a scalar subquery on the primary, correlated with the
    caller's row): their stored position, at least the floor's, at most the primary's current
    position. No row of theirs: the floor (0 but after a crash restart). No floor row (a crash
    restart emptied the table): the primary's current position. Capped by the current position,
    which no position of this primary's can exceed (positions restored from another server's dump
    would)."""
    floor = literal(FLOOR_KEY, Uuid())
    stored = UserWritePosition.position
    own = func.max(stored).filter(UserWritePosition.user_id == user_id)
    floor_position = func.max(stored).filter(UserWritePosition.user_id == floor)
    needed = func.greatest(own, func.coalesce(floor_position, literal(_NO_FLOOR, BigInteger())))
    return (
        select(func.least(literal_column(INSERT_POSITION), needed))
        .where(
            or_(
                and_(
                    UserWritePosition.organization_id == organization_id,
                    UserWritePosition.user_id == user_id,
                ),
                and_(
                    UserWritePosition.organization_id == floor, UserWritePosition.user_id == floor
                ),
            )
        )
        .scalar_subquery()
    )


@dataclass
class CallerCheck:
    """A statement that reads the caller (and their scope) and the row the primary returned for it."""

    statement: Any
    params: dict[str, Any]
    expected: tuple[Any, ...]


@dataclass
class Freshness:
    """What one request needs from the replica (see the module docstring)."""

    # The caller, as loaded from the primary: the user whose position the request's writes store.
    user_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    min_position: int = 0
    caller: CallerCheck | None = None
    # The replica passed the check for this request (it only moves forward): later reads skip it.
    verified: bool = False


_FRESHNESS: ContextVar[Freshness | None] = ContextVar("replica_freshness", default=None)


def current_freshness() -> Freshness | None:
    return _FRESHNESS.get()


def begin_request() -> Token[Freshness | None]:
    """Gives the current HTTP request its own `Freshness` (`ServiceMiddleware`, infra/http.py)."""
    return _FRESHNESS.set(Freshness())


def end_request(token: Token[Freshness | None]) -> None:
    """Resets what `begin_request` set, so that nothing carries over to another request."""
    _FRESHNESS.reset(token)


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
