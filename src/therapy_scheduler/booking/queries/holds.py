"""Holds: the caller's active holds, expiry, a new hold and its occurrences, a hold by its key and its
occurrences, closing it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.infra import last_statement
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.models import (
    Client,
    Hold,
    HoldOccurrence,
    Therapist,
)

ACTIVE_HOLDS = select(func.count(), func.min(Hold.expires_at)).where(
    Hold.status == "active",
    Hold.expires_at > bindparam("now"),
    Hold.created_by == bindparam("user_id"),
)
# ACTIVE_HOLDS but one hold, as the text `last_statement.check_last` reads with the transaction's last
# statement.
_ACTIVE_HOLDS_BUT_SQL = (
    "SELECT count(*) AS active, min(expires_at) AS earliest FROM holds "
    "WHERE status = 'active' AND expires_at > :{q}now AND created_by = :{q}user_id "
    "AND id <> :{q}but"
)


async def check_active_holds_last(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    now: datetime,
    but: uuid.UUID,
    check: Callable[[int, datetime | None], None],
) -> None:
    """How many holds this user created that still block (active and unexpired), other than hold
    `but`, and the earliest time one of them expires, read by the transaction's last statement (on
    PostgreSQL, with the change counter's bump: infra/last_statement.py `check_last`) and given to `check`
    before COMMIT."""
    await last_statement.check_last(
        conn,
        _ACTIVE_HOLDS_BUT_SQL,
        ("active", "earliest"),
        {
            "now": (now, Hold.expires_at.type),
            "user_id": (user_id, Hold.created_by.type),
            "but": (but, Hold.id.type),
        },
        lambda row: check(int(row[0]), row[1]),
    )


# The hold occurrences of the therapist and of the client (`therapist_id`, `client_id`) that expired
# (`now`) but are still `active`, at any time.
EXPIRED_OF_PEOPLE = (
    HoldOccurrence.active.is_(True),
    HoldOccurrence.expires_at <= bindparam("now"),
    or_(
        HoldOccurrence.therapist_id == bindparam("therapist_id"),
        HoldOccurrence.client_id == bindparam("client_id"),
    ),
)

_EXPIRED = (
    select(HoldOccurrence.id)
    .where(*EXPIRED_OF_PEOPLE)
    .order_by(HoldOccurrence.id)
    .with_for_update()
)


async def deactivate_expired_holds(
    conn: AsyncConnection, *, therapist_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> None:
    """Expired hold occurrences of these people stop being `active`, so that the PostgreSQL exclusion
    constraint (which counts active rows) lets the slot be taken again. Rows are locked in id order so
    that concurrent callers never wait on each other in a cycle."""
    params = {"now": now, "therapist_id": therapist_id, "client_id": client_id}
    ids = list((await conn.execute(_EXPIRED, params)).scalars())
    if ids:
        await conn.execute(
            update(HoldOccurrence).where(HoldOccurrence.id.in_(ids)).values(active=False)
        )


async def insert_hold(
    conn: AsyncConnection,
    *,
    hold_id: uuid.UUID,
    organization_id: uuid.UUID,
    hold_key: str,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    created_by: uuid.UUID,
    expires_at: datetime,
    time_zone: str,
    service_code: str,
    location_id: uuid.UUID | None,
    location_type: str | None,
    reschedule_session_id: uuid.UUID | None,
    recurrence: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    created_at: datetime,
) -> None:
    """A new `active` hold (its occurrences are `insert_hold_occurrences`), written with the
    transaction's last statement on PostgreSQL when it has few occurrences
    (`last_statement.insert_rows_later`): nothing in the hold's transaction reads it back, and the
    people's locks are held one round trip less."""
    await last_statement.insert_rows_later(
        conn,
        Hold,
        [
            {
                "id": hold_id,
                "organization_id": organization_id,
                "hold_key": hold_key,
                "therapist_id": therapist_id,
                "client_id": client_id,
                "created_by": created_by,
                "status": "active",
                "expires_at": expires_at,
                "time_zone": time_zone,
                "service_code": service_code,
                "location_id": location_id,
                "location_type": location_type,
                "reschedule_session_id": reschedule_session_id,
                "recurrence": recurrence,
                "metadata": metadata,  # the column of `Hold.hold_metadata`
                "created_at": created_at,
            }
        ],
    )


# What one held occurrence takes: start, end, the authorization its units come from, its units.
HeldSlot = tuple[datetime, datetime, uuid.UUID | None, int]


async def insert_hold_occurrences(
    conn: AsyncConnection,
    *,
    hold_id: uuid.UUID,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    expires_at: datetime,
    service_code: str,
    slots: list[HeldSlot],
    supervises: list[str | None] | None = None,
) -> None:
    """The active occurrences of a new hold, indexed in the order of `slots`; `supervises`: per
    slot, the service code it supervises (None: ordinary; docs/BOOKING.md). After the hold's row
    (`insert_hold`), with the transaction's last statement when they are few, else now in one
    statement (`last_statement.insert_rows_later`): an overlap the exclusion constraints refuse
    fails the statement that carries them, and the transaction, either way."""
    codes: list[str | None] = supervises or [None] * len(slots)
    await last_statement.insert_rows_later(
        conn,
        HoldOccurrence,
        [
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "hold_id": hold_id,
                "occurrence_index": index,
                "therapist_id": therapist_id,
                "client_id": client_id,
                "start_time": start,
                "end_time": end,
                "expires_at": expires_at,
                "active": True,
                "service_code": service_code,
                "authorization_id": authorization_id,
                "units": units,
                "supervises": codes[index],
            }
            for index, (start, end, authorization_id, units) in enumerate(slots)
        ],
    )


HOLD_COLUMNS = (
    Hold.id,
    Hold.organization_id,
    Hold.hold_key,
    Hold.therapist_id,
    Hold.client_id,
    Hold.created_by,
    Hold.status,
    Hold.expires_at,
    Hold.time_zone,
    Hold.service_code,
    Hold.location_id,
    Hold.location_type,
    Hold.reschedule_session_id,
    Hold.recurrence,
    Hold.hold_metadata.label("hold_metadata"),
    Hold.series_id,
    Hold.confirmed_by,
    Hold.created_at,
    Hold.closed_at,
)


_HOLD_BY_KEY = select(*HOLD_COLUMNS).where(
    Hold.hold_key == bindparam("hold_key"), Hold.organization_id == bindparam("organization_id")
)
_HOLD_BY_KEY_LOCKED = _HOLD_BY_KEY.with_for_update()


async def hold_by_key(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str, *, for_update: bool = False
) -> Row[Any] | None:
    """The hold with this key in the organization (None if none). A hold this transaction created
    and kept back for its last statement (`insert_hold`) is inserted first, so that it is found (a
    waitlist offer reads its hold back in the hold's own transaction)."""
    await last_statement.insert_kept_now(conn, Hold)
    query = _HOLD_BY_KEY_LOCKED if for_update else _HOLD_BY_KEY
    params = {"hold_key": hold_key, "organization_id": organization_id}
    return (await conn.execute(query, params)).first()


@dataclass(frozen=True)
class Held:
    """One occurrence of a hold, as `hold_occurrences` and `hold_to_confirm` read it."""

    id: uuid.UUID
    occurrence_index: int
    start_time: datetime
    end_time: datetime
    active: bool
    service_code: str
    authorization_id: uuid.UUID | None
    units: int
    session_id: uuid.UUID | None
    supervises: str | None = None
    expires_at: datetime | None = None


_T = aliased(Therapist, name="t")
_C = aliased(Client, name="c")
_HELD_COLUMNS = tuple(
    getattr(HoldOccurrence, name).label(f"held_{name}") for name in Held.__dataclass_fields__
)
# Built once (SQLAlchemy reuses its cache key and compiled form).
_HOLD_TO_CONFIRM = (
    select(
        *HOLD_COLUMNS,
        _T.full_name.label("therapist_name"),
        _C.full_name.label("client_name"),
        *_HELD_COLUMNS,
    )
    .join(HoldOccurrence, HoldOccurrence.hold_id == Hold.id)
    .join(_T, _T.id == Hold.therapist_id)
    .join(_C, _C.id == Hold.client_id)
    .where(
        Hold.hold_key == bindparam("hold_key"),
        Hold.organization_id == bindparam("organization_id"),
    )
    .order_by(HoldOccurrence.occurrence_index)
    .with_for_update(of=Hold)
)


async def hold_to_confirm(
    conn: AsyncConnection, organization_id: uuid.UUID, hold_key: str
) -> tuple[Any, list[Held]]:
    """A hold under its row lock, with its occurrences and its therapist's and client's names, in
    one statement: (None, []) when there is no such hold."""
    rows = await driver_read(_HOLD_TO_CONFIRM, conn.dialect).all(
        conn, {"hold_key": hold_key, "organization_id": organization_id}
    )
    if not rows:
        return None, []
    held = [Held(*(getattr(r, f"held_{name}") for name in Held.__dataclass_fields__)) for r in rows]
    return rows[0], held


# id, occurrence_index, start_time, end_time, active, service_code, authorization_id, units,
# session_id, supervises
HoldOccurrenceRow = Row[
    uuid.UUID,
    int,
    datetime,
    datetime,
    bool,
    str,
    uuid.UUID | None,
    int,
    uuid.UUID | None,
    str | None,
]


async def hold_occurrences(conn: AsyncConnection, hold_id: uuid.UUID) -> list[HoldOccurrenceRow]:
    return list(
        (
            await conn.execute(
                select(
                    HoldOccurrence.id,
                    HoldOccurrence.occurrence_index,
                    HoldOccurrence.start_time,
                    HoldOccurrence.end_time,
                    HoldOccurrence.active,
                    HoldOccurrence.service_code,
                    HoldOccurrence.authorization_id,
                    HoldOccurrence.units,
                    HoldOccurrence.session_id,
                    HoldOccurrence.supervises,
                )
                .where(HoldOccurrence.hold_id == hold_id)
                .order_by(HoldOccurrence.occurrence_index)
            )
        ).all()
    )


async def close_hold(
    conn: AsyncConnection,
    hold_id: uuid.UUID,
    *,
    status: str,
    now: datetime,
    session_ids: dict[uuid.UUID, uuid.UUID] | None = None,
    **values: Any,
) -> None:
    """The hold's occurrences stop blocking (and, on a confirm, point at the sessions they became:
    `session_ids`, occurrence id → session id, in the same statement); the hold gets its status."""
    occurrences: dict[str, Any] = {"active": False}
    if session_ids:
        occurrences["session_id"] = case(
            *(
                (HoldOccurrence.id == held, literal(session, HoldOccurrence.session_id.type))
                for held, session in session_ids.items()
            )
        )
    await conn.execute(
        update(HoldOccurrence).where(HoldOccurrence.hold_id == hold_id).values(**occurrences)
    )
    await conn.execute(
        update(Hold).where(Hold.id == hold_id).values(status=status, closed_at=now, **values)
    )


async def confirm_later(
    conn: AsyncConnection,
    hold_id: uuid.UUID,
    *,
    now: datetime,
    session_ids: dict[uuid.UUID, uuid.UUID],
    **values: Any,
) -> None:
    """`close_hold` of a confirmed hold (occurrence id → the session it became, in `session_ids`),
    written with the transaction's last statement on PostgreSQL when the hold has few occurrences
    (`last_statement.update_later`, one per occurrence), else now: for a confirm that reads
    nothing of the hold afterwards (the balances it answers with are read before,
    booking/confirm.py)."""
    if len(session_ids) > last_statement.FEW_ROWS:
        await close_hold(
            conn, hold_id, status="confirmed", now=now, session_ids=session_ids, **values
        )
        return
    for held, session in session_ids.items():
        await last_statement.update_later(
            conn, HoldOccurrence, {"active": False, "session_id": session}, where={"id": held}
        )
    await last_statement.update_later(
        conn, Hold, {"status": "confirmed", "closed_at": now, **values}, where={"id": hold_id}
    )
