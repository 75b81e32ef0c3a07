"""The caller of a write and the claim of its `Idempotency-Key`, read and made by one statement
(docs/DECISIONS.md, "Conditional requests": the booking's round trips).

The caller is loaded as `current_principal` loads them (the active user and their organization,
else 401), and the key is claimed as `infra/idempotency.claim` claims it, for the caller's
organization, by an `INSERT … SELECT` from the caller's row: no row, no claim. The statement runs
in autocommit (`Database.single_statement_write`), so the claim commits at once and other processes
see it. A key that exists already (a replay, a reuse, a claim in progress or abandoned) is then
looked at in a transaction, as always. Where writes cannot run in autocommit (SQLite, PgBouncer)
or a read replica decides how the caller is read, both are done as before, one after the other.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy import String, Uuid, bindparam, literal, select
from sqlalchemy.dialects import postgresql
from starlette.responses import Response

from therapy_scheduler.auth.principal import (
    Principal,
    caller_row,
    current_principal,
    principal_from,
)
from therapy_scheduler.errors import Unauthorized
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.infra.idempotency import (
    KEEP,
    Claim,
    claim,
    claim_existing,
    claim_scope,
    fingerprint,
    valid_key,
)
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import IdempotencyRecord


def _caller_and_claim() -> Any:
    caller = caller_row().cte("caller")
    columns = ("id", "organization_id", "user_id", "endpoint", "key", "request_hash", "state")
    new_record = select(
        bindparam("record_id", type_=Uuid()),
        caller.c.organization_id,
        caller.c.id,
        bindparam("endpoint", type_=String()),
        bindparam("key", type_=String()),
        bindparam("request_hash", type_=String()),
        literal("in_progress"),
        bindparam("created_at", type_=IdempotencyRecord.created_at.type),
        bindparam("expires_at", type_=IdempotencyRecord.expires_at.type),
    )
    claimed = (
        postgresql.insert(IdempotencyRecord)
        .from_select([*columns, "created_at", "expires_at"], new_record)
        .on_conflict_do_nothing(index_elements=["organization_id", "user_id", "endpoint", "key"])
        .returning(IdempotencyRecord.id)
        .cte("claimed")
    )
    return select(caller, select(claimed.c.id).scalar_subquery().label("claimed_id"))


# Built once (SQLAlchemy reuses its cache key and compiled form).
_CALLER_AND_CLAIM = _caller_and_claim()


async def caller_and_claim(
    request: Request, user_id: uuid.UUID, endpoint: str, key: str | None, payload: Any
) -> tuple[Principal, Claim | Response | None]:
    """The caller, the user `user_id` of the request's verified bearer token (401 if unknown or
    inactive), and the claim of the request's `Idempotency-Key` (`infra/idempotency.claim`'s
    outcome; None without a key)."""
    db: Database = request.app.state.db
    if key is None or not valid_key(key) or db.has_replica or not db.autocommit_writes:
        # As before: the caller, then the key (a malformed key: 400 after the caller's 401).
        principal = await current_principal(request)
        if key is None:
            return principal, None
        return principal, await claim(
            db,
            organization_id=principal.organization_id,
            user_id=principal.user_id,
            endpoint=endpoint,
            key=key,
            request_hash=fingerprint(payload),
            now=utcnow(),
        )
    now = utcnow()
    request_hash = fingerprint(payload)
    record_id = uuid.uuid4()
    async with db.single_statement_write() as single:
        assert single is not None
        row = await driver_read(_CALLER_AND_CLAIM, single.dialect).first(
            single,
            {
                "caller_id": user_id,
                "record_id": record_id,
                "endpoint": endpoint,
                "key": key,
                "request_hash": request_hash,
                "created_at": now,
                "expires_at": now + KEEP,
            },
        )
    principal = _remembered(request, principal_from(row))
    assert row is not None
    if row.claimed_id is not None:
        return principal, Claim(db, row.claimed_id)
    scope = claim_scope(principal.organization_id, user_id, endpoint, key)
    return principal, await claim_existing(db, scope, request_hash, now)


def _remembered(request: Request, principal: Principal | None) -> Principal:
    """As `current_principal` keeps them: for the request, and as this process's known caller."""
    if principal is None:
        raise Unauthorized("Unknown or inactive user")
    request.state.principal = principal
    request.app.state.callers.remember(principal)
    return principal
