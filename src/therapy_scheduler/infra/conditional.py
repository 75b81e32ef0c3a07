"""Conditional GETs of the read endpoints: an ETag from the change counter, and 304 Not Modified.

The ETag of an answer stands for everything the answer is made of: the organization's version
(`infra/changes.py`, read BEFORE the answer's statements), the route, the normalized query, the
caller (user, role, therapist, organization, time zone) and the instant `now` the answer was
computed for. It is `W/"<now in µs, hex>-<HMAC>"`: the instant in clear, so that a later request
can re-check it, and an HMAC (keyed by the service's secret) of the rest, so that the version is not
disclosed and a tag cannot be forged to match another caller's answer.

`If-None-Match` is answered 304 when one of its tags is the HMAC of the current version for this
route, query and caller at the tag's instant t0, and nothing that changes answers as time passes
happened since t0 (a hold expiring; for `get-sessions-optimized`, a scheduled session starting,
which moves it out of `upcoming`). Why that never 304s a stale answer: docs/DECISIONS.md,
"Conditional requests".
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Select, Uuid, bindparam, false, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from therapy_scheduler.infra import changes
from therapy_scheduler.models import Hold, Session
from therapy_scheduler.models.base import UTCDateTime

_MAX_TAGS = 16  # tags of one If-None-Match looked at (a client sends one)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_HOLD_EXPIRED = (
    select(literal(1))
    .select_from(Hold)
    .where(
        Hold.status == "active",
        Hold.expires_at > bindparam("t0", type_=UTCDateTime()),
        Hold.expires_at <= bindparam("now", type_=UTCDateTime()),
        Hold.organization_id == bindparam("org", type_=Uuid()),
    )
    .limit(1)
)
_SESSION_STARTED = (
    select(literal(1))
    .select_from(Session)
    .where(
        Session.organization_id == bindparam("org", type_=Uuid()),
        Session.start_time > bindparam("t0", type_=UTCDateTime()),
        Session.start_time <= bindparam("now", type_=UTCDateTime()),
        Session.status == "scheduled",
    )
    .limit(1)
)


@dataclass(frozen=True)
class Caller:
    """The parts of the caller an answer depends on."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    scope_key: str
    time_zone: str


@dataclass(frozen=True)
class Watch:
    """What, besides writes, changes an answer as time passes."""

    hold_expiry: bool = True
    session_start: bool = False


@dataclass(frozen=True)
class Validator:
    """The ETag of one answer, and whether the request's `If-None-Match` already holds it."""

    etag: str
    not_modified: bool
    version: int

    def response(self) -> Response:
        """The 304 answer (no body; the privacy headers are added by the middleware)."""
        return Response(status_code=304, headers={"ETag": self.etag})

    def tag(self, response: Response) -> Response:
        response.headers["ETag"] = self.etag
        return response


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"therapy-scheduler etag\x00" + secret.encode()).digest()


def _micros(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def make_etag(
    secret: str,
    *,
    route: str,
    query: Mapping[str, Any],
    caller: Caller,
    version: int,
    now: datetime,
) -> str:
    at = _micros(now)
    payload = orjson.dumps(
        [
            route,
            version,
            at,
            str(caller.user_id),
            str(caller.organization_id),
            caller.scope_key,
            caller.time_zone,
            query,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    mac = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:18]
    return f'W/"{at:x}-{base64.urlsafe_b64encode(mac).decode()}"'


def etag_for(
    request: Request,
    *,
    route: str,
    query: Mapping[str, Any],
    caller: Caller,
    version: int,
    now: datetime,
) -> str:
    """The ETag of an answer computed at `now` from data at least as new as `version`."""
    secret: str = request.app.state.settings.jwt_secret
    return make_etag(secret, route=route, query=query, caller=caller, version=version, now=now)


def conditional(request: Request) -> bool:
    """Whether the request carries `If-None-Match` (else an answer needs no version first)."""
    return bool(request.headers.get("if-none-match"))


def requested_tags(header: str | None) -> list[str]:
    """The entity tags of an `If-None-Match` header, without their `W/` (weak comparison)."""
    if not header:
        return []
    tags = []
    for part in header.split(",")[:_MAX_TAGS]:
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) >= 2 and tag.startswith('"') and tag.endswith('"'):
            tags.append(tag)
    return tags


def _tag_instant(tag: str) -> int | None:
    head, sep, _ = tag.strip('"').partition("-")
    if not sep or not 0 < len(head) <= 16:
        return None
    try:
        return int(head, 16)
    except ValueError:
        return None


async def validate(
    request: Request,
    conn: AsyncConnection,
    *,
    route: str,
    query: Mapping[str, Any],
    caller: Caller,
    now: datetime,
    watch: Watch,
) -> Validator:
    """Read the organization's version (before the answer's own statements: call this first) and
    compare the request's `If-None-Match` with it. The answer computed afterwards with this same
    `now` gets `Validator.etag`.

    One statement for a board revalidating the week it shows: the version, and whether time moved
    answers since the instant of the first tag, are read together."""
    secret: str = request.app.state.settings.jwt_secret
    current = _micros(now)
    instants = [
        (tag, at)
        for tag in requested_tags(request.headers.get("if-none-match"))
        if (at := _tag_instant(tag)) is not None and at <= current
    ]
    t0 = _instant(instants[0][1]) if instants else None
    version, moved_since_t0 = await _version_and_moves(conn, caller, t0, now, watch)
    for tag, at in instants:
        earlier = make_etag(
            secret, route=route, query=query, caller=caller, version=version, now=_instant(at)
        )
        if not hmac.compare_digest(earlier[2:], tag):
            continue
        moved = (
            moved_since_t0
            if _instant(at) == t0
            else await _time_moved_answers(conn, caller, _instant(at), now, watch)
        )
        if moved:
            break
        return Validator(earlier, not_modified=True, version=version)
    fresh = make_etag(secret, route=route, query=query, caller=caller, version=version, now=now)
    return Validator(fresh, not_modified=False, version=version)


async def _version_and_moves(
    conn: AsyncConnection, caller: Caller, t0: datetime | None, now: datetime, watch: Watch
) -> tuple[int, bool]:
    """The organization's version and, when `t0` is given, whether time moved answers in
    (t0, now] (`_time_moved_answers`), in one statement."""
    if t0 is None or t0 == now:
        return await changes.current_version(conn, caller.organization_id), False
    values = {"org": caller.organization_id, "t0": t0, "now": now}
    row = (await conn.execute(_moves_statement(watch), values)).one()
    return int(row.version), bool(row.moved)


@functools.lru_cache(maxsize=4)
def _moves_statement(watch: Watch) -> Select[Any]:
    checks = [
        query.exists()
        for query, on in (
            (_HOLD_EXPIRED, watch.hold_expiry),
            (_SESSION_STARTED, watch.session_start),
        )
        if on
    ]
    moved = or_(*checks) if checks else false()
    return select(changes.version_column("org").label("version"), moved.label("moved"))


async def _time_moved_answers(
    conn: AsyncConnection, caller: Caller, t0: datetime, now: datetime, watch: Watch
) -> bool:
    """Whether, with no write since t0, an answer computed at `now` may differ from one computed
    at t0: a hold expired in (t0, now], or a scheduled session started in it."""
    if t0 == now:
        return False
    values = {"org": caller.organization_id, "t0": t0, "now": now}
    if watch.hold_expiry and (await conn.execute(_HOLD_EXPIRED, values)).first() is not None:
        return True
    return (
        watch.session_start and (await conn.execute(_SESSION_STARTED, values)).first() is not None
    )
