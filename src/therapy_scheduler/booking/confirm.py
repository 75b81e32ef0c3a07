"""Confirming a hold (docs/BOOKING.md): every held occurrence becomes a `scheduled` session, atomically."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.booking import queries
from therapy_scheduler.booking.access import hold_visible
from therapy_scheduler.booking.errors import (
    HoldAlreadyConfirmed,
    HoldExpired,
    HoldMismatch,
    HoldNotFound,
    HoldReleased,
    OffsetMismatch,
    SessionNotReschedulable,
)
from therapy_scheduler.booking.occurrences import Occurrence, parse_given, read_time
from therapy_scheduler.booking.rules.constraints import overlap_as_conflict
from therapy_scheduler.booking.rules.locks import lock_hold_people
from therapy_scheduler.booking.rules.states import target
from therapy_scheduler.booking.rules.supervision import check_still_supervised
from therapy_scheduler.booking.schemas import ConfirmBody
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.calendar.session_json import serialize_session
from therapy_scheduler.calendar.units import UnitBalance, UnitKey, balances_and_end_dates
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc, utcnow, zone


async def confirm_hold(
    *,
    db: Database,
    principal: Principal,
    body: ConfirmBody,
    now: datetime,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Turn every occurrence of a live hold into a scheduled session (one series), or change nothing.

    A second confirm of the same hold by the same user returns the sessions the first one created.
    """
    freed: list[freed_slots.Recorded] = []
    async with overlap_as_conflict(), db.write() as conn:
        # Serialize with every other booking of the hold's people (their locks taken by the
        # statement that finds them), then read the hold under its row lock, in a statement of its
        # own that starts after the locks were granted: of racing confirms, exactly one sees it
        # active.
        await lock_hold_people(conn, principal.organization_id, body.hold_key)
        hold, held = await queries.hold_to_confirm(conn, principal.organization_id, body.hold_key)
        if not hold_visible(principal, hold):
            raise HoldNotFound()
        # Waiting for the locks takes time: judge expiry by the clock as it is now.
        now = max(now, utcnow())
        replay = _state_allows_confirm(hold, principal, now)
        if not replay and not all(o.active for o in held):
            # Deactivated by a booking that found it expired: it is gone even if not yet marked.
            raise HoldExpired(
                "This hold has expired; hold the slot again",
                details={"expires_at": iso_utc(hold.expires_at)},
            )
        tz = zone(body.time_zone) if body.time_zone else ZoneInfo(hold.time_zone)
        _check_offsets(body, tz)
        _check_matches(body, hold, held, tz)
        if not replay:
            # A supervision whose supervised session went away since it was held is not booked
            # (docs/DECISIONS.md "Supervision overlap").
            await check_still_supervised(
                conn, client_id=hold.client_id, held=held, now=now, named_in=tz
            )

        if replay:
            session_ids = [o.session_id for o in held if o.session_id is not None]
            sessions = await sessions_view(conn, principal, session_ids, now)
        elif hold.reschedule_session_id is not None:
            session_ids = await _move_session(conn, principal, hold, held[0], body, now, freed)
            sessions = await sessions_view(conn, principal, session_ids, now)
        else:
            # The balances the answer shows are read before the writes, which then all go with
            # the transaction's last statement: the people's locks are held for three round trips
            # less (docs/PERFORMANCE.md, "What limits each figure": booking).
            balances = await _balances_after(conn, principal, held, now)
            rows = await _create_sessions(conn, principal, hold, held, body, now)
            session_ids = [row["id"] for row in rows]
            sessions = _new_sessions_view(hold, rows, balances)
        if not replay:
            await audit.record(
                conn,
                organization_id=principal.organization_id,
                actor_user_id=principal.user_id,
                action="hold.confirm",
                entity_type="hold",
                entity_id=hold.id,
                request_id=request_id,
                details={
                    "session_ids": [str(i) for i in session_ids],
                    "therapist_id": str(hold.therapist_id),
                    "client_id": str(hold.client_id),
                    "rescheduled": hold.reschedule_session_id is not None,
                },
                client_ids=[hold.client_id],
            )
            event = "session.updated" if hold.reschedule_session_id else "session.created"
            for session_id in session_ids:
                await outbox.emit_session_event(
                    conn,
                    organization_id=principal.organization_id,
                    event_type=event,
                    session_id=session_id,
                    therapist_id=hold.therapist_id,
                    client_id=hold.client_id,
                )
        response: dict[str, Any] = ok(
            session=sessions[0] if sessions else None,
            occurrences=sessions,
            hold_key=body.hold_key,
            series_id=sessions[0]["series_id"] if sessions else None,
            replayed=replay,
        )
        if finalize is not None:
            await finalize(conn, response)
    freed_slots.kick(db, freed)  # a reschedule's old time goes to the waitlist (docs/WAITLIST.md)
    return response


def _state_allows_confirm(hold: Any, principal: Principal, now: datetime) -> bool:
    """True when this is a replay of the caller's own earlier confirm; raise when it cannot go on."""
    if hold.status == "confirmed":
        if hold.confirmed_by == principal.user_id:
            return True
        raise HoldAlreadyConfirmed(
            "This hold was already confirmed by another user", details={"status": "confirmed"}
        )
    if hold.status == "released":
        raise HoldReleased("This hold was released", details={"status": "released"})
    if hold.status == "expired" or hold.expires_at <= now:
        raise HoldExpired(
            "This hold has expired; hold the slot again",
            details={"expires_at": iso_utc(hold.expires_at)},
        )
    return False


def _minutes_east(tz: ZoneInfo, instant: datetime) -> int:
    offset = instant.astimezone(tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _check_offsets(body: ConfirmBody, tz: ZoneInfo) -> None:
    """Given offsets (minutes east of UTC) must be the zone's offsets at the given instants."""
    for field, text, given in (
        ("start_time_offset_minutes", body.session.start_time, body.start_time_offset_minutes),
        ("end_time_offset_minutes", body.session.end_time, body.end_time_offset_minutes),
    ):
        if given is None:
            continue
        instant = read_time(text, tz, "session." + field.removesuffix("_offset_minutes"))
        expected = _minutes_east(tz, instant)
        if expected != given:
            raise OffsetMismatch(
                f"{field} is {given} but {tz.key} is at {expected} minutes east of UTC then",
                details={"field": field, "given": given, "expected": expected, "time_zone": tz.key},
            )


def _check_matches(body: ConfirmBody, hold: Any, held: list[Any], tz: ZoneInfo) -> None:
    """The confirm must name exactly what was held: times, occurrences, service and place."""
    first = Occurrence(
        read_time(body.session.start_time, tz, "session.start_time"),
        read_time(body.session.end_time, tz, "session.end_time"),
    )
    expected = [Occurrence(o.start_time, o.end_time) for o in held]
    if first != expected[0]:
        raise _mismatch("session", 0, expected[0], first)
    if body.occurrences is not None:
        given = parse_given(body.occurrences, tz, [o.end - o.start for o in expected])
        if len(given) != len(expected):
            raise HoldMismatch(
                f"The hold has {len(expected)} occurrences, the request names {len(given)}",
                details={"field": "occurrences", "held": len(expected), "given": len(given)},
            )
        for index, (want, got) in enumerate(zip(expected, given, strict=True)):
            if want != got:
                raise _mismatch(f"occurrences[{index}]", index, want, got)
    for field, held_value in (
        ("service_code", hold.service_code),
        ("location_id", hold.location_id),
        ("location_type", hold.location_type),
    ):
        given_value = getattr(body.session, field)
        if given_value is not None and given_value != held_value:
            raise HoldMismatch(
                f"session.{field} differs from the held one",
                details={
                    "field": f"session.{field}",
                    "held": None if held_value is None else str(held_value),
                    "given": str(given_value),
                },
            )


def _mismatch(field: str, index: int, want: Occurrence, got: Occurrence) -> HoldMismatch:
    return HoldMismatch(
        f"{field} does not match the held time range",
        details={
            "field": field,
            "occurrence_index": index,
            "held": want.as_json(),
            "given": got.as_json(),
        },
    )


async def _create_sessions(
    conn: AsyncConnection,
    principal: Principal,
    hold: Any,
    held: list[Any],
    body: ConfirmBody,
    now: datetime,
) -> list[queries.NewSession]:
    """The sessions of a confirmed hold, as the rows inserted."""
    series_id = uuid.uuid4() if len(held) > 1 else None
    rows: list[queries.NewSession] = [
        {
            "id": uuid.uuid4(),
            "organization_id": principal.organization_id,
            "therapist_id": hold.therapist_id,
            "client_id": hold.client_id,
            "location_id": hold.location_id,
            "location_type": hold.location_type,
            "service_code": o.service_code,
            "start_time": o.start_time,
            "end_time": o.end_time,
            "status": "scheduled",
            "authorization_id": o.authorization_id,
            "units": o.units,
            "consumes_units": True,
            "series_id": series_id,
            "supervises": o.supervises,
            "notes": body.session.notes,
            "created_by": principal.user_id,
            "updated_by": principal.user_id,
            "created_at": now,
            "updated_at": now,
        }
        for o in held
    ]
    # Units move from reserved (active hold rows) to scheduled (sessions) in one transaction; nothing
    # after this reads them back, so they are written with its last statement.
    await queries.insert_sessions(conn, rows=rows)
    await queries.confirm_later(
        conn,
        hold.id,
        now=now,
        session_ids={o.id: row["id"] for o, row in zip(held, rows, strict=True)},
        confirmed_by=principal.user_id,
        series_id=series_id,
    )
    return rows


async def _move_session(
    conn: AsyncConnection,
    principal: Principal,
    hold: Any,
    occurrence: Any,
    body: ConfirmBody,
    now: datetime,
    freed: list[freed_slots.Recorded],
) -> list[uuid.UUID]:
    """A reschedule hold moves its session to the held time instead of creating a new one (its old
    time is recorded as freed, in `freed`)."""
    current = await queries.session_to_move(
        conn, organization_id=principal.organization_id, session_id=hold.reschedule_session_id
    )
    if current is None or target(current.status, "reschedule") is None:
        raise SessionNotReschedulable(
            "The session being moved is no longer scheduled",
            details={"session_id": str(hold.reschedule_session_id)},
        )
    await queries.close_hold(
        conn,
        hold.id,
        status="confirmed",
        now=now,
        session_ids={occurrence.id: current.id},
        confirmed_by=principal.user_id,
    )
    if current.end_time > now:
        # The session's old time goes to the waitlist after COMMIT (docs/WAITLIST.md).
        freed_id = await freed_slots.record_freed(
            conn,
            organization_id=principal.organization_id,
            therapist_id=hold.therapist_id,
            start=current.start_time,
            end=current.end_time,
            cause="reschedule",
            now=now,
        )
        freed.append(freed_id)
    await queries.move_session(
        conn,
        session_id=current.id,
        start_time=occurrence.start_time,
        end_time=occurrence.end_time,
        service_code=occurrence.service_code,
        authorization_id=occurrence.authorization_id,
        units=occurrence.units,
        supervises=occurrence.supervises,
        location_id=hold.location_id,
        location_type=hold.location_type,
        notes=body.session.notes,
        updated_by=principal.user_id,
        updated_at=now,
    )
    return [current.id]


async def sessions_view(
    conn: AsyncConnection, principal: Principal, session_ids: list[uuid.UUID], now: datetime
) -> list[dict[str, Any]]:
    """The §6.1 session shape (with notes and timestamps); authorization data only for roles that
    may see it."""
    if not session_ids:
        return []
    rows = await queries.session_views(conn, session_ids=session_ids)
    balances = ends = None
    if principal.can(Capability.SEE_AUTHORIZATIONS):
        auth_ids = {r.authorization_id for r in rows if r.authorization_id is not None}
        balances, ends = await balances_and_end_dates(conn, auth_ids, now)
    return [serialize_session(r, balances=balances, auth_ends=ends, detailed=True) for r in rows]


Balances = tuple[dict[UnitKey, UnitBalance], dict[uuid.UUID, tuple[date, date, str]]] | None


async def _balances_after(
    conn: AsyncConnection, principal: Principal, held: list[Any], now: datetime
) -> Balances:
    """The balances and end dates of the held occurrences' authorizations as they will be once the
    confirm has written its sessions (None for roles that may not see them): read before the
    writes, each held occurrence's units moved from reserved (it is active and, at `now`,
    unexpired: `reserved` counted it) to consumed (its session consumes them), as the same read
    after the writes would give."""
    if not principal.can(Capability.SEE_AUTHORIZATIONS):
        return None
    auth_ids = {o.authorization_id for o in held if o.authorization_id is not None}
    balances, ends = await balances_and_end_dates(conn, auth_ids, now)
    for o in held:
        key = (o.authorization_id, o.service_code)
        if o.authorization_id is None or key not in balances:
            continue
        counted = o.active and o.expires_at is not None and o.expires_at > now
        current = balances[key]
        balances[key] = replace(
            current,
            consumed=current.consumed + o.units,
            reserved=current.reserved - (o.units if counted else 0),
        )
    return balances, ends


def _new_sessions_view(
    hold: Any, rows: list[queries.NewSession], balances: Balances
) -> list[dict[str, Any]]:
    """`sessions_view` of the sessions this transaction writes, built from their rows and the names
    read with the hold instead of being read back, with the balances of `_balances_after`."""
    names = {"therapist_name": hold.therapist_name, "client_name": hold.client_name}
    created = sorted(
        (SimpleNamespace(**row, **names) for row in rows), key=lambda r: (r.start_time, r.id)
    )
    counts, ends = balances if balances is not None else (None, None)
    return [
        serialize_session(r, balances=counts, auth_ends=ends, detailed=True)  # type: ignore[arg-type]
        for r in created
    ]
