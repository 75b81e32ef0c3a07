"""Rules of the read endpoints: scoping, ranges in the right zone, pagination, summaries."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import CallerChanged, Principal, principal_from
from therapy_scheduler.auth.scope import not_visible, scope_kind, scope_params
from therapy_scheduler.calendar.availability import (
    TherapistCalendar,
    availability_entries,
    load_calendars,
)
from therapy_scheduler.infra import changes
from therapy_scheduler.infra.alongside import alongside
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.driver_read import driver_read
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import day_bounds, zone
from therapy_scheduler.models import MAX_SESSION_LENGTH
from therapy_scheduler.schedule.conflicts import (
    Checks,
    authorization_checks_of,
    range_conflicts,
    visible_therapists,
)
from therapy_scheduler.schedule.queries.conflicts import (
    ConflictSession,
    busy_with_candidates,
    conflict_candidates,
)
from therapy_scheduler.schedule.queries.pages import (
    PageShape,
    RangeShape,
    batch_page_statement,
    sessions_page_statement,
)
from therapy_scheduler.schedule.schemas import ScheduleBatchParams, SessionsParams


async def schedule_batch(
    *,
    db: Database,
    conn: AsyncConnection,
    principal: Principal,
    params: ScheduleBatchParams,
    now: datetime,
    with_version: bool = False,
) -> tuple[dict[str, Any], Shown]:
    """Sessions overlapping the requested days (in `time_zone`), with optional availability and
    conflicts over the whole range, limited to what the caller may see, read on `conn` (and on
    other connections of `db` alongside). The page statement re-reads the caller: `CallerChanged`
    when they are not `principal` any more (`Reading.as_caller`). `shown`: the page's
    session count and the client ids of its sessions, then of its conflicts (for the PHI read log),
    and with `with_version` the organization's change counter for the ETag: the older of the
    versions read by the page statement and by the reads started before it on connections of their
    own, so that every part of the answer is at least as new.

    The page comes back from the database as JSON text (`batch_page_statement`) and goes into the
    response as it is (`data.sessions` is an `orjson.Fragment`)."""
    started = time.perf_counter()
    tz_name = params.time_zone or principal.organization_time_zone
    range_start, range_end = day_bounds(params.start_date, params.end_date, zone(tz_name))
    shape = RangeShape(
        db.dialect, scope_kind(principal), bool(params.therapist_ids), bool(params.client_ids)
    )
    values = {
        **scope_params(principal),
        "range_start": range_start,
        "range_end": range_end,
        "range_floor": range_start - MAX_SESSION_LENGTH,
        "therapist_ids": params.therapist_ids,
        "client_ids": params.client_ids,
        "batch_size": params.batch_size,
        "offset": params.offset,
        "now": now,
        "caller_id": principal.user_id,
    }
    statement = batch_page_statement(shape, principal.can(Capability.SEE_AUTHORIZATIONS))
    if with_version:
        statement = changes.with_version(statement, "scope_organization_id")

    async with AsyncExitStack() as stack:
        # What the page statement's answer does not decide starts first, each on a connection of
        # its own, and is answered while the page is read: the filtered therapists' calendars and
        # the conflicts' authorization checks (docs/DECISIONS.md, "The week's reads run alongside
        # the page"). Each reads its own snapshot, after the version read first there: the
        # ETag's is the oldest.
        works: list[Callable[[AsyncConnection], Awaitable[Any]]] = []

        async def read_calendars(c: AsyncConnection, therapist_ids: list[uuid.UUID]) -> Calendars:
            # With a therapist filter the conflict candidates (the range's sessions, not
            # cancelled) are among the busy sessions of the filtered therapists (the same, over a
            # day more on each side): one fetch serves both, the database marking the candidates.
            week = None
            if params.include_conflicts and params.therapist_ids:
                week = await busy_with_candidates(
                    c, params.therapist_ids, range_start, range_end, shape, values
                )
            return week, await load_calendars(
                c,
                organization_id=principal.organization_id,
                therapist_ids=therapist_ids,
                start=range_start,
                end=range_end,
                now=now,
                sessions=week,
            )

        ahead = params.include_availability and bool(params.therapist_ids)
        if ahead:
            works.append(lambda c: read_calendars(c, params.therapist_ids))
        if ahead and params.include_conflicts and principal.can(Capability.SEE_AUTHORIZATIONS):
            # Their candidates' starts are bounded by the range.
            starts = (values["range_floor"], range_end)
            works.append(
                authorization_checks_of(starts, conflict_candidates(shape), values, principal.zone)
            )
        versions: list[int] = []

        def versioned(work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
            async def run(c: AsyncConnection) -> Any:
                if with_version and c is not conn:
                    versions.append(await changes.current_version(c, principal.organization_id))
                return await work(c)

            return run

        ahead_results = await stack.enter_async_context(alongside(db, conn, *map(versioned, works)))
        # The week's first read: run on the driver directly (infra/driver_read.py).
        page = await driver_read(statement, conn.dialect).one(conn, values)
        if principal_from(page, prefix="caller_") != principal:
            raise CallerChanged()
        # The ids asked for, checked by the page statement: 404 unless every one is visible,
        # therapists first (work started meanwhile ends unread).
        for kind, asked in (("therapist", params.therapist_ids), ("client", params.client_ids)):
            if asked and getattr(page, f"{kind}s_visible") != len(set(asked)):
                raise not_visible(kind)
        # Therapists known to be visible to the caller: not looked up again below.
        visible_known = set(params.therapist_ids)
        total = int(page.total)
        client_ids: list[str] = orjson.loads(page.client_ids)  # one per session shown
        shown_count = len(client_ids)
        data: dict[str, Any] = {"sessions": orjson.Fragment(page.sessions)}
        # Calendars loaded for the availability, reused by the conflicts (same therapists, same range).
        calendars: dict[uuid.UUID, TherapistCalendar] = {}
        # The conflict candidates, when the fetch of the busy time has brought them too.
        active: Sequence[ConflictSession] | None = None
        checks: Callable[[], Awaitable[Checks]] | None = (
            ahead_results[1] if len(ahead_results) > 1 else None
        )

        if params.include_availability:
            wanted = params.therapist_ids or [
                uuid.UUID(t) for t in dict.fromkeys(orjson.loads(page.therapist_ids))
            ]
            visible = await visible_therapists(conn, principal, wanted, known=visible_known)
            visible_known.update(visible)
            # With a therapist filter every one is visible (checked above): their calendars were
            # read alongside.
            week, calendars = await (ahead_results[0]() if ahead else read_calendars(conn, visible))
            if week is not None:
                active = [r for r in week if r.candidate]
            data["availability"] = availability_entries(
                calendars, visible, params.start_date, params.end_date
            )
        if params.include_conflicts:
            data["conflicts"] = await range_conflicts(
                conn,
                principal,
                shape,
                values,
                range_start,
                range_end,
                now,
                loaded=calendars,
                active=active,
                checks=checks,
                visible_known=visible_known,
            )

    next_offset = params.offset + shown_count
    has_more = next_offset < total
    data["pagination"] = {
        "total_records": total,
        "batch_size": params.batch_size,
        "current_offset": params.offset,
        "has_more": has_more,
        "next_offset": next_offset if has_more else None,
    }
    data["performance"] = {
        "query_time_ms": round((time.perf_counter() - started) * 1000, 2),
        "cache_hit": False,
    }
    return ok(
        data=data,
        request_parameters={
            "start_date": params.start_date.isoformat(),
            "end_date": params.end_date.isoformat(),
            "therapist_ids": [str(i) for i in params.therapist_ids],
            "client_ids": [str(i) for i in params.client_ids],
            "batch_size": params.batch_size,
            "offset": params.offset,
            "include_availability": params.include_availability,
            "include_conflicts": params.include_conflicts,
            "time_zone": tz_name,
        },
    ), Shown(
        count=shown_count,
        client_ids=[
            *client_ids,
            *(c["client_id"] for c in data.get("conflicts", ()) if c.get("client_id")),
        ],
        version=min([int(page.change_version), *versions]) if with_version else None,
    )


# The busy sessions with the conflict candidates marked (when conflicts are asked for), and the
# calendars they filled.
Calendars = tuple[Sequence[ConflictSession] | None, dict[uuid.UUID, TherapistCalendar]]


@dataclass(frozen=True)
class Shown:
    """What a response showed, for the PHI read log: how many sessions, and their clients' ids
    (canonical text, in order, repeats allowed)."""

    count: int
    client_ids: list[str]
    version: int | None = None  # the organization's change counter, when asked for


async def sessions_page(
    *,
    conn: AsyncConnection,
    principal: Principal,
    params: SessionsParams,
    now: datetime,
    with_version: bool = False,
) -> tuple[dict[str, Any], Shown]:
    """One page of sessions, newest first, with a summary over every row matching the filters.

    One statement (`sessions_page_statement`) answers the whole request; the page comes back as
    JSON text built by the database and goes into the response as it is (`data.sessions` is an
    `orjson.Fragment`). `shown` carries what the PHI read log needs: the session count and the
    client ids shown."""
    started = time.perf_counter()
    tz_name = params.time_zone or principal.organization_time_zone
    tz = zone(tz_name)
    position = (
        decode_cursor("sessions", params.cursor, (datetime, uuid.UUID)) if params.cursor else None
    )
    shape = PageShape(
        dialect=conn.dialect.name,
        scope=scope_kind(principal),
        therapist=params.therapist_id is not None,
        client=params.client_id is not None,
        statuses=bool(params.status),
        location_type=params.location_type is not None,
        start=params.start_date is not None,
        end=params.end_date is not None,
        cursor=position is not None,
        authorizations=principal.can(Capability.SEE_AUTHORIZATIONS),
    )
    values: dict[str, Any] = {
        **scope_params(principal),
        "therapist_id": params.therapist_id,
        "client_id": params.client_id,
        "statuses": params.status,
        "location_type": params.location_type,
        "limit": params.limit,
        "fetch": params.limit + 1,
        "offset": (params.page - 1) * params.limit,
        "now": now,
        "caller_id": principal.user_id,
    }
    if params.start_date:
        values["range_start"] = day_bounds(params.start_date, params.start_date, tz)[0]
    if params.end_date:
        values["range_end"] = day_bounds(params.end_date, params.end_date, tz)[1]
    if position is not None:
        values["after_time"], values["after_id"] = position

    statement = sessions_page_statement(shape)
    if with_version:
        # The organization's change counter in the same snapshot, for the ETag (infra/changes.py).
        statement = changes.with_version(statement, "scope_organization_id")
    # The hottest read: run on the driver directly (infra/driver_read.py).
    row = await driver_read(statement, conn.dialect).one(conn, values)
    if principal_from(row, prefix="caller_") != principal:
        raise CallerChanged()
    if shape.therapist and row.therapists_visible != 1:
        raise not_visible("therapist")
    if shape.client and row.clients_visible != 1:
        raise not_visible("client")

    more = row.fetched > params.limit
    total = int(row.total)
    return ok(
        data={
            "sessions": orjson.Fragment(row.sessions),
            "pagination": {
                "page": None if position else params.page,
                "limit": params.limit,
                "total": total,
                "total_pages": math.ceil(total / params.limit) if total else 0,
                "has_next_page": more,
                "has_previous_page": position is not None or params.page > 1,
                "next_cursor": encode_cursor("sessions", row.last_start_time, row.last_id)
                if more
                else None,
            },
            "summary": {
                "total_sessions": total,
                "scheduled": row.scheduled,
                "in_progress": row.in_progress,
                "completed": row.completed,
                "cancelled": row.cancelled,
                "no_show": row.no_show,
                "upcoming": row.upcoming,
                "scheduled_minutes": round(float(row.scheduled_minutes or 0)),
            },
        },
        filters={
            "page": params.page,
            "limit": params.limit,
            "therapist_id": str(params.therapist_id) if params.therapist_id else None,
            "client_id": str(params.client_id) if params.client_id else None,
            "status": params.status,
            "start_date": params.start_date.isoformat() if params.start_date else None,
            "end_date": params.end_date.isoformat() if params.end_date else None,
            "location_type": params.location_type,
            "cursor": params.cursor,
            "time_zone": tz_name,
        },
        performance={"query_time_ms": round((time.perf_counter() - started) * 1000, 2)},
    ), Shown(
        count=min(row.fetched, params.limit),
        client_ids=orjson.loads(row.client_ids),
        version=int(row.change_version) if with_version else None,
    )
