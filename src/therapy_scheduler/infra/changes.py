"""The change counter: every write transaction bumps the version of each organization it changed.

The read endpoints build their ETags from it (`infra/conditional.py`). `Database.write()` calls
`start` when a write transaction begins and `bump` as its last statement before COMMIT, so that the
new version commits atomically with the change (docs/DECISIONS.md, "Conditional requests").

A write registers the organizations it changes with `touch`. Every audited write does so through
`infra/audit_log.py`; the few unaudited ones (the hold purge, the import, the demo's records) call
`touch` themselves. As a safety net, a transaction that inserted, updated or deleted rows of a table
that answers depend on without registering any organization bumps every organization's version
(correct, only coarser) and logs the tables, so that the missing `touch` is found.
"""

from __future__ import annotations

import functools
import logging
import random
import uuid
from typing import Any

from sqlalchemy import (
    ScalarSelect,
    Select,
    Uuid,
    bindparam,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from therapy_scheduler.infra import last_statement
from therapy_scheduler.infra.last_statement_sql import COUNTER_UPSERT
from therapy_scheduler.models import ChangeCounter

log = logging.getLogger("therapy_scheduler.changes")

# A version is the sum of its organization's stripes: concurrent writers of one organization update
# different rows (PostgreSQL row locks), and a sum of counters that only grow grows with each write.
STRIPES = 16

# Tables whose rows no answer with an ETag shows: writing them alone changes no version.
UNVERSIONED_TABLES = frozenset(
    {
        "change_counters",
        "idempotency_records",
        "audit_events",
        # the webhook outbox and its deliveries (docs/WEBHOOKS.md)
        "webhook_endpoints",
        "webhook_events",
        "webhook_deliveries",
        "webhook_attempts",
        # the waitlist and its outbox of freed slots (docs/WAITLIST.md); its offers are holds
        "waitlist_entries",
        "waitlist_offers",
        "freed_slots",
        # each user's last write position, for replica reads (infra/replica.py)
        "user_write_positions",
    }
)

_TOUCHED = "therapy_scheduler.changes.touched"
_WRITTEN = "therapy_scheduler.changes.written"

_BUMP = text(COUNTER_UPSERT.format(values="(:org, :stripe, 1)")).bindparams(
    bindparam("org", type_=Uuid())
)
# Also for tools that change data outside `Database.write()` (bench/harness.py's clean-up).
BUMP_EVERY_ORGANIZATION = (
    "INSERT INTO change_counters (organization_id, stripe, version) "
    "SELECT id, :stripe, 1 FROM organizations WHERE true "
    "ON CONFLICT (organization_id, stripe) DO UPDATE SET version = change_counters.version + 1"
)
_BUMP_ALL = text(BUMP_EVERY_ORGANIZATION)
_VERSION = text(
    "SELECT coalesce(sum(version), 0) FROM change_counters WHERE organization_id = :org"
).bindparams(bindparam("org", type_=Uuid()))


def touch(conn: AsyncConnection | Connection, organization_id: uuid.UUID) -> None:
    """Register that this write transaction changes `organization_id`'s data."""
    touched = conn.info.get(_TOUCHED)
    if touched is None:
        touched = conn.info[_TOUCHED] = set()
    touched.add(organization_id)


def start(conn: AsyncConnection, *, keep_back: bool = False) -> None:
    """A write transaction begins (the connection's `info` outlives it in the pool). `keep_back`:
    what is left to the last statement (`infra/last_statement.py`) rides on the bump (PostgreSQL)."""
    conn.info[_TOUCHED] = set()
    conn.info[_WRITTEN] = set()
    last_statement.begin(conn, keep_back=keep_back)


def discard(conn: AsyncConnection) -> None:
    """The transaction is over: nothing kept back outlives it (after a rollback, say)."""
    last_statement.discard(conn)


async def bump(conn: AsyncConnection) -> None:
    """Add 1 to one stripe of every organization the transaction touched (sorted, so that two
    transactions never wait on each other's stripes in opposite orders). Run last before COMMIT:
    on PostgreSQL the stripe's row lock is then held for the COMMIT only. What the transaction left
    to its last statement (`infra/last_statement.py`) goes in first: by the same statement on
    PostgreSQL."""
    touched: set[uuid.UUID] = conn.info.pop(_TOUCHED, None) or set()
    written: set[str] = conn.info.pop(_WRITTEN, None) or set()
    stripe = random.randrange(STRIPES)  # noqa: S311 - spreads writers; not a secret
    if await last_statement.run_with_bump(conn, sorted(touched), stripe):
        return
    if touched:
        await conn.execute(_BUMP, [{"org": o, "stripe": stripe} for o in sorted(touched)])
    elif written:
        log.warning(
            "a write to %s registered no organization; every version bumped",
            ", ".join(sorted(written)),
        )
        await conn.execute(_BUMP_ALL, {"stripe": stripe})


async def current_version(conn: AsyncConnection, organization_id: uuid.UUID) -> int:
    """The organization's version as of this statement's snapshot."""
    return int((await conn.execute(_VERSION, {"org": organization_id})).scalar_one())


def version_column(organization_param: str) -> ScalarSelect[Any]:
    """The version of the organization bound to `organization_param`, as a scalar subquery read in
    its statement's own snapshot."""
    return (
        select(func.coalesce(func.sum(ChangeCounter.version), 0))
        .where(ChangeCounter.organization_id == bindparam(organization_param, type_=Uuid()))
        .scalar_subquery()
    )


@functools.lru_cache(maxsize=512)
def with_version(statement: Select[Any], organization_param: str) -> Select[Any]:
    """`statement` with one more column, `change_version`: the version of the organization bound
    to `organization_param`, read in the statement's own snapshot (so exactly the version of the
    data the statement read). `statement` must be a cached (long-lived) object."""
    return statement.add_columns(version_column(organization_param).label("change_version"))


def watch_writes(engine: AsyncEngine) -> None:
    """Note the tables each statement of a write transaction inserts into, updates or deletes from
    (for the safety net of `bump`). Installed once per writer engine."""
    if event.contains(engine.sync_engine, "before_execute", _note_write):
        return
    event.listen(engine.sync_engine, "before_execute", _note_write)


def _note_write(conn: Connection, clause: Any, *_args: Any, **_kwargs: Any) -> None:
    written = conn.info.get(_WRITTEN)
    if written is None:
        return
    if getattr(clause, "is_dml", False):
        table = getattr(getattr(clause, "table", None), "name", None)
        if table is not None and table not in UNVERSIONED_TABLES:
            written.add(str(table))
    elif isinstance(clause, TextClause):
        words = clause.text.lstrip().split(None, 3)
        if words and words[0].lower() in {"insert", "update", "delete"}:
            name = words[2] if words[0].lower() != "update" else words[1]
            name = name.strip('"').split("(")[0]
            if name not in UNVERSIONED_TABLES:
                written.add(name)
