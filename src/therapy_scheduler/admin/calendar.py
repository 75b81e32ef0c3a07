"""A therapist's weekly availability windows and dated exceptions (time off, extra hours).

Admins and schedulers manage anyone's calendar; a therapist manages only their own (another therapist's
calendar is answered 404, as they cannot see that therapist). Times are local to the therapist's zone:
weekly windows are stored as wall-clock times; dated exceptions are resolved to UTC when written, so
they keep their instants if the therapist's zone changes later.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.common import AdminContext, found, invalid, not_found, page_envelope
from therapy_scheduler.admin.queries import calendar as queries
from therapy_scheduler.admin.queries.calendar import CalendarOwner, TimeOffRow, Window
from therapy_scheduler.admin.schemas import (
    AvailabilityPut,
    TimeOffCreate,
    TimeOffListParams,
    TimeOffPatch,
)
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.domain.vocab import WEEKDAYS
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import day_bounds, iso_utc, resolve_local, utcnow

MAX_TIME_OFF = timedelta(days=366)


async def _therapist(
    conn: AsyncConnection, ctx: AdminContext, therapist_id: uuid.UUID
) -> CalendarOwner:
    """The therapist whose calendar the caller may manage, else 404."""
    principal = ctx.principal
    own = principal.therapist_id == therapist_id
    if not (
        principal.can(Capability.MANAGE_CLIENTS)
        or (own and principal.can(Capability.MANAGE_OWN_AVAILABILITY))
    ):
        raise not_found("therapist")
    return found(await queries.therapist(conn, ctx.organization_id, therapist_id), "therapist")


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M") if value.second == 0 else value.isoformat()


async def _windows(conn: AsyncConnection, therapist: CalendarOwner) -> dict[str, Any]:
    rows = await queries.windows(conn, therapist.id)
    windows = [
        {"weekday": WEEKDAYS[r.weekday], "start": _hhmm(r.start_local), "end": _hhmm(r.end_local)}
        for r in rows
    ]
    return ok(
        data={
            "therapist_id": str(therapist.id),
            "time_zone": therapist.time_zone,
            "windows": windows,
        }
    )


async def get_availability(*, ctx: AdminContext, therapist_id: uuid.UUID) -> dict[str, Any]:
    """The therapist's weekly windows, by weekday and start."""
    async with ctx.db.read() as conn:
        return await _windows(conn, await _therapist(conn, ctx, therapist_id))


async def put_availability(
    *, ctx: AdminContext, therapist_id: uuid.UUID, body: AvailabilityPut
) -> dict[str, Any]:
    """Replace every weekly window. Windows of one weekday may touch but not overlap."""
    ordered = sorted(
        enumerate(body.windows), key=lambda iw: (WEEKDAYS.index(iw[1].weekday), iw[1].start)
    )
    for (_, before), (index, window) in itertools.pairwise(ordered):
        if before.weekday == window.weekday and window.start < before.end:
            raise invalid(
                f"windows.{index}",
                f"overlaps another {window.weekday} window "
                f"({_hhmm(before.start)}-{_hhmm(before.end)})",
            )
    async with ctx.write() as conn:
        therapist = await _therapist(conn, ctx, therapist_id)
        await queries.replace_windows(
            conn,
            ctx.organization_id,
            therapist_id,
            [Window(WEEKDAYS.index(w.weekday), w.start, w.end) for w in body.windows],
        )
        await ctx.audit(
            conn,
            "therapist.availability.replace",
            "therapist",
            therapist_id,
            {"windows": len(body.windows)},
        )
        return await _windows(conn, therapist)


# --- time off and extra hours -------------------------------------------------------------------


def _local(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz).replace(tzinfo=None)
    return local.isoformat(timespec="minutes" if local.second == 0 else "seconds")


def serialize_time_off(row: TimeOffRow, time_zone: str) -> dict[str, Any]:
    tz = ZoneInfo(time_zone)
    return {
        "id": str(row.id),
        "therapist_id": str(row.therapist_id),
        "kind": row.kind,
        "start": _local(row.start_time, tz),
        "end": _local(row.end_time, tz),
        "time_zone": time_zone,
        "start_time": iso_utc(row.start_time),
        "end_time": iso_utc(row.end_time),
    }


def _resolve(start: datetime, end: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """UTC instants of local wall-clock times (400 for an offset, a DST gap, or a bad range)."""
    for field, value in (("start", start), ("end", end)):
        if value.tzinfo is not None:
            raise invalid(field, "give the therapist's local time, without a UTC offset")
    tz = ZoneInfo(time_zone)
    first, last = resolve_local(start, tz), resolve_local(end, tz)
    if first >= last:
        raise invalid("end", "must be after start")
    if last - first > MAX_TIME_OFF:
        raise invalid("end", "an entry may span at most 366 days")
    return first, last


async def list_time_off(
    *, ctx: AdminContext, therapist_id: uuid.UUID, params: TimeOffListParams
) -> dict[str, Any]:
    """Entries by start time; the date filters are days in the therapist's zone."""
    async with ctx.db.read() as conn:
        therapist = await _therapist(conn, ctx, therapist_id)
        tz = ZoneInfo(therapist.time_zone)
        ends_after = starts_before = None
        if params.start_date:
            ends_after = day_bounds(params.start_date, params.start_date, tz)[0]
        if params.end_date:
            starts_before = day_bounds(params.end_date, params.end_date, tz)[1]
        if params.start_date and params.end_date and params.start_date > params.end_date:
            raise invalid("start_date", "must not be after end_date")
        page = await queries.time_off_page(
            conn,
            ctx.organization_id,
            therapist_id,
            ends_after=ends_after,
            starts_before=starts_before,
            kind=params.kind,
            cursor=params.cursor,
            limit=params.limit,
        )
    items = [serialize_time_off(r, therapist.time_zone) for r in page.rows]
    return page_envelope(page, items, params.limit)


async def create_time_off(
    *, ctx: AdminContext, therapist_id: uuid.UUID, body: TimeOffCreate
) -> dict[str, Any]:
    """A dated exception: `time_off` removes working hours, `extra` adds some."""
    entry_id = uuid.uuid4()
    async with ctx.write() as conn:
        therapist = await _therapist(conn, ctx, therapist_id)
        start, end = _resolve(body.start, body.end, therapist.time_zone)
        await queries.insert_time_off(
            conn,
            entry_id=entry_id,
            organization_id=ctx.organization_id,
            therapist_id=therapist_id,
            kind=body.kind,
            start_time=start,
            end_time=end,
        )
        await ctx.audit(
            conn, "therapist.time_off.create", "time_off", entry_id,
            {"therapist_id": str(therapist_id), "kind": body.kind},
        )  # fmt: skip
        row = found(
            await queries.time_off(conn, ctx.organization_id, therapist_id, entry_id), "time off"
        )
    return ok(data=serialize_time_off(row, therapist.time_zone))


async def _entry(
    conn: AsyncConnection, ctx: AdminContext, therapist_id: uuid.UUID, entry_id: uuid.UUID
) -> tuple[CalendarOwner, TimeOffRow]:
    therapist = await _therapist(conn, ctx, therapist_id)
    row = found(
        await queries.time_off(conn, ctx.organization_id, therapist_id, entry_id), "time off"
    )
    return therapist, row


async def update_time_off(
    *, ctx: AdminContext, therapist_id: uuid.UUID, entry_id: uuid.UUID, patch: TimeOffPatch
) -> dict[str, Any]:
    """Change an entry; given times are read in the therapist's current zone."""
    changes = patch.changes()
    async with ctx.write() as conn:
        therapist, row = await _entry(conn, ctx, therapist_id, entry_id)
        tz = ZoneInfo(therapist.time_zone)
        start = changes.get("start") or row.start_time.astimezone(tz).replace(tzinfo=None)
        end = changes.get("end") or row.end_time.astimezone(tz).replace(tzinfo=None)
        values: dict[str, Any] = {"kind": changes.get("kind", row.kind)}
        if "start" in changes or "end" in changes:
            values["start_time"], values["end_time"] = _resolve(start, end, therapist.time_zone)
        await queries.update_time_off(conn, entry_id, values)
        await ctx.audit(
            conn, "therapist.time_off.update", "time_off", entry_id,
            {"therapist_id": str(therapist_id), "fields": sorted(changes)},
        )  # fmt: skip
        _, row = await _entry(conn, ctx, therapist_id, entry_id)
    return ok(data=serialize_time_off(row, therapist.time_zone))


async def delete_time_off(
    *, ctx: AdminContext, therapist_id: uuid.UUID, entry_id: uuid.UUID
) -> dict[str, Any]:
    """Remove an entry (calendar exceptions are not people: they are really deleted)."""
    freed: list[freed_slots.Recorded] = []
    async with ctx.write() as conn:
        _, row = await _entry(conn, ctx, therapist_id, entry_id)
        await queries.delete_time_off(conn, entry_id)
        now = utcnow()
        if row.kind == "time_off" and row.end_time > now:
            # The working time it gives back goes to the waitlist after COMMIT (docs/WAITLIST.md).
            freed.append(
                await freed_slots.record_freed(
                    conn,
                    organization_id=ctx.organization_id,
                    therapist_id=therapist_id,
                    start=max(row.start_time, now),
                    end=row.end_time,
                    cause="time_off",
                    now=now,
                )
            )
        await ctx.audit(
            conn, "therapist.time_off.delete", "time_off", entry_id,
            {"therapist_id": str(therapist_id)},
        )  # fmt: skip
    freed_slots.kick(ctx.db, freed)
    return ok(id=str(entry_id), deleted=True)
