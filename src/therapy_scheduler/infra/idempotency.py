"""`Idempotency-Key` for state-changing POSTs (IETF draft semantics), kept in the database so that the
rules hold across server processes.

* Scope: organization + user + endpoint + key. Records expire after 24 hours.
* First request: a record is *claimed* (`in_progress`) in its own short transaction, so that others see
  it at once. The handler then runs; its success response is stored **in the handler's own
  transaction** (`finalize`), so "the change happened" and "the response is stored" commit together.
* Same key, same body, completed → the stored response again, with `Idempotent-Replay: true`.
* Same key, different body → 422 IDEMPOTENCY_KEY_REUSED. Same key while the first still runs → 409
  IDEMPOTENCY_IN_PROGRESS (a claim older than STALE_AFTER is considered abandoned and taken over).
* A 4xx outcome is stored and replayed like a success (the request was answered); after a 5xx the claim
  is dropped so that a retry runs again. Requests refused by input validation never claim a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Header
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from therapy_scheduler.errors import AppError, ValidationFailed
from therapy_scheduler.infra import last_statement
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.envelope import JSON, error_body
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import IdempotencyRecord

# The request header of every endpoint that accepts an Idempotency-Key (booking and admin POSTs).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes a retry safe: the same key and body replay the first response (24 h).",
    ),
]


KEEP = timedelta(hours=24)
STALE_AFTER = timedelta(seconds=60)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAY_HEADER = "Idempotent-Replay"

Finalize = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]
Action = Callable[[Finalize | None], Awaitable[dict[str, Any]]]


class IdempotencyKeyReused(AppError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(AppError):
    status = 409
    code = "IDEMPOTENCY_IN_PROGRESS"


def fingerprint(payload: Any) -> str:
    """A stable hash of a JSON-able request payload (key order does not matter).

    The standard library's encoder, not orjson: a raw JSON body may hold what orjson refuses
    (integers beyond 64 bits, lone surrogates), and hashing must never be why a request fails.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def render(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


# Built once: SQLAlchemy reuses their cache key and compiled form on every request.
_NEW_RECORD: dict[str, Any] = {
    column: bindparam(column)
    for column in (
        "id",
        "organization_id",
        "user_id",
        "endpoint",
        "key",
        "request_hash",
        "created_at",
        "expires_at",
    )
}
_CLAIM = {
    name: dialect.insert(IdempotencyRecord)
    .values(**_NEW_RECORD, state="in_progress")
    .on_conflict_do_nothing(index_elements=["organization_id", "user_id", "endpoint", "key"])
    .returning(IdempotencyRecord.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class Claim:
    """This request owns the key until it stores a response or abandons the claim."""

    def __init__(self, db: Database, record_id: uuid.UUID) -> None:
        self.db = db
        self.record_id = record_id

    async def store(self, conn: AsyncConnection, status: int, body: dict[str, Any]) -> None:
        """Store the response in the write's own transaction: with its last statement on
        PostgreSQL (`last_statement.update_later`: one round trip less while the write holds its locks)."""
        await last_statement.update_later(
            conn,
            IdempotencyRecord,
            {"state": "completed", "response_status": status, "response_body": render(body)},
            where={"id": self.record_id},
        )

    async def store_separately(self, status: int, body: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await self.store(conn, status, body)

    async def abandon(self) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == self.record_id,
                    IdempotencyRecord.state == "in_progress",
                )
            )


def valid_key(key: str) -> bool:
    return _KEY.match(key) is not None


def check_key(key: str) -> str:
    if not valid_key(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            details={"fields": [{"field": "Idempotency-Key", "message": "invalid key"}]},
        )
    return key


async def claim(
    db: Database,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    endpoint: str,
    key: str,
    request_hash: str,
    now: datetime,
) -> Claim | Response:
    """Own the key (a Claim) or get the stored response to replay; raise 422/409 otherwise."""
    scope = claim_scope(organization_id, user_id, endpoint, key)
    first = uuid.uuid4()
    async with db.single_statement_write() as single:
        # Usually the key is new: its claim is one INSERT, committed by itself (no BEGIN and
        # COMMIT round trips); a key already there is looked at in a transaction below.
        if single is not None:
            params = {
                "id": first,
                **scope,
                "request_hash": request_hash,
                "created_at": now,
                "expires_at": now + KEEP,
            }
            if (await single.execute(_CLAIM["postgresql"], params)).first() is not None:
                return Claim(db, first)
    return await claim_existing(db, scope, request_hash, now)


def claim_scope(
    organization_id: uuid.UUID, user_id: uuid.UUID, endpoint: str, key: str
) -> dict[str, Any]:
    """What a key is unique within (400 for a key that is not 1 to 255 visible ASCII characters)."""
    return {
        "organization_id": organization_id,
        "user_id": user_id,
        "endpoint": endpoint,
        "key": check_key(key),
    }


async def claim_existing(
    db: Database, scope: dict[str, Any], request_hash: str, now: datetime
) -> Claim | Response:
    """`claim` in a transaction, for a key that may exist already (its record looked at, a replay,
    a reuse, a claim in progress or abandoned), or wherever a write cannot run in autocommit."""
    endpoint = scope["endpoint"]
    for _ in range(3):
        async with db.write() as conn:
            record_id = uuid.uuid4()
            params = {
                "id": record_id,
                **scope,
                "request_hash": request_hash,
                "created_at": now,
                "expires_at": now + KEEP,
            }
            created = (await conn.execute(_CLAIM[conn.dialect.name], params)).first()
            if created is not None:
                return Claim(db, record_id)
            existing = (
                await conn.execute(
                    select(IdempotencyRecord).where(
                        *(getattr(IdempotencyRecord, k) == v for k, v in scope.items())
                    )
                )
            ).first()
            if existing is None:
                continue  # deleted meanwhile: try to insert again
            if existing.expires_at <= now:
                await conn.execute(
                    delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id)
                )
                await conn.execute(
                    insert(IdempotencyRecord).values(
                        id=record_id,
                        **scope,
                        request_hash=request_hash,
                        state="in_progress",
                        created_at=now,
                        expires_at=now + KEEP,
                    )
                )
                return Claim(db, record_id)
            if existing.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request body",
                    details={"endpoint": endpoint},
                )
            if existing.state == "completed":
                return Response(
                    content=existing.response_body or b"{}",
                    status_code=existing.response_status or 200,
                    media_type="application/json",
                    headers={REPLAY_HEADER: "true"},
                )
            if existing.created_at > now - STALE_AFTER:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still being processed; retry shortly",
                    details={"endpoint": endpoint},
                    headers={"Retry-After": "1"},
                )
            taken = await conn.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == existing.id,
                    IdempotencyRecord.state == "in_progress",
                    IdempotencyRecord.created_at == existing.created_at,
                )
                .values(created_at=now, expires_at=now + KEEP)
            )
            if taken.rowcount == 1:
                return Claim(db, existing.id)
    raise IdempotencyInProgress(
        "A request with this Idempotency-Key is still being processed; retry shortly",
        details={"endpoint": endpoint},
        headers={"Retry-After": "1"},
    )


async def run_idempotent(
    db: Database,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    endpoint: str,
    key: str | None,
    payload: Any,
    request_id: str | None,
    action: Action,
    status: int = 200,
) -> Response:
    """Run `action` at most once per key; `action` receives the finalizer it must call with its
    response body inside its own transaction (None when no key was given). `status` is the success
    status (201 for a create)."""
    if key is None:
        return JSON(await action(None), status_code=status)
    outcome = await claim(
        db,
        organization_id=organization_id,
        user_id=user_id,
        endpoint=endpoint,
        key=key,
        request_hash=fingerprint(payload),
        now=utcnow(),
    )
    return await run_claimed(outcome, request_id=request_id, action=action, status=status)


async def run_claimed(
    outcome: Claim | Response | None,
    *,
    request_id: str | None,
    action: Action,
    status: int = 200,
) -> Response:
    """`run_idempotent` once the key was claimed (`outcome`: the claim, the stored response to
    replay, or None when the request has no key)."""
    if outcome is None:
        return JSON(await action(None), status_code=status)
    if isinstance(outcome, Response):
        return outcome
    owned = outcome
    stored = False

    async def finalize(conn: AsyncConnection, body: dict[str, Any]) -> None:
        nonlocal stored
        await owned.store(conn, status, body)
        stored = True

    try:
        body = await action(finalize)
    except AppError as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            await owned.store_separately(
                exc.status,
                error_body(
                    code=exc.code, message=exc.message, request_id=request_id, details=exc.details
                ),
            )
        else:
            await _abandon_quietly(owned)
        raise
    except BaseException:
        await _abandon_quietly(owned)
        raise
    if not stored:  # an action that changed nothing and so had no transaction to store it in
        await owned.store_separately(status, body)
    return JSON(body, status_code=status)


async def _abandon_quietly(owned: Claim) -> None:
    try:
        await owned.abandon()
    except Exception:  # the database may be the reason we are here; the claim goes stale instead
        return
