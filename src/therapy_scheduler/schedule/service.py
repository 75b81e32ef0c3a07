"""Rules of the read endpoints: scoping, ranges in the right zone, pagination, summaries."""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, cast, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import require_visible, session_scope, therapist_scope
from therapy_scheduler.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.time import day_bounds, zone
from therapy_scheduler.models import MAX_SESSION_LENGTH, Session, Therapist
from therapy_scheduler.reference.authorizations import balances_and_end_dates
from therapy_scheduler.schedule.availability import availability_entries, load_calendars
from therapy_scheduler.schedule.conflicts import find_conflicts
from therapy_scheduler.schedule.queries import authorization_ids, serialize_session, session_rows
from therapy_scheduler.schedule.schemas import ScheduleBatchParams, SessionsParams


async def schedule_batch(
    *, db: Database, principal: Principal, params: ScheduleBatchParams, now: datetime
) -> dict[str, Any]:
    """Sessions overlapping the requested days (in `time_zone`), with optional availability and
    conflicts over the whole range, limited to what the caller may see."""
    started = time.perf_counter()
    tz_name = params.time_zone or principal.organization_time_zone
    range_start, range_end = day_bounds(params.start_date, params.end_date, zone(tz_name))
    where = [
        session_scope(principal),
        Session.start_time < range_end,
        Session.end_time > range_start,
        Session.start_time > range_start - MAX_SESSION_LENGTH,  # index lower bound (implied)
    ]
    if params.therapist_ids:
        where.append(Session.therapist_id.in_(params.therapist_ids))
    if params.client_ids:
        where.append(Session.client_id.in_(params.client_ids))

    async with db.read() as conn:
        await require_visible(
            conn, principal, therapist_ids=params.therapist_ids, client_ids=params.client_ids
        )
        total = (
            await conn.execute(select(func.count()).select_from(Session).where(*where))
        ).scalar_one()
        rows = (
            await conn.execute(
                session_rows()
                .where(*where)
                .order_by(Session.start_time, Session.id)
                .limit(params.batch_size)
                .offset(params.offset)
            )
        ).all()
        sessions = await _serialize(conn, principal, rows, now, detailed=False)
        data: dict[str, Any] = {"sessions": sessions}

        if params.include_availability:
            wanted = params.therapist_ids or list(dict.fromkeys(r.therapist_id for r in rows))
            visible = await _visible_therapists(conn, principal, wanted)
            calendars = await load_calendars(
                conn,
                organization_id=principal.organization_id,
                therapist_ids=visible,
                start=range_start,
                end=range_end,
                now=now,
            )
            data["availability"] = availability_entries(
                calendars, visible, params.start_date, params.end_date
            )
        if params.include_conflicts:
            data["conflicts"] = await _conflicts(
                conn, principal, where, range_start, range_end, now
            )

    next_offset = params.offset + len(rows)
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
    return {
        "success": True,
        "data": data,
        "request_parameters": {
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
    }


async def _visible_therapists(
    conn: AsyncConnection, principal: Principal, wanted: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Availability is shown only for therapists the caller may see (a therapist: only themselves)."""
    if not wanted:
        return []
    found = set(
        (
            await conn.execute(
                select(Therapist.id).where(therapist_scope(principal), Therapist.id.in_(wanted))
            )
        )
        .scalars()
        .all()
    )
    return [t for t in wanted if t in found]


async def _conflicts(
    conn: AsyncConnection,
    principal: Principal,
    where: list[Any],
    range_start: datetime,
    range_end: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    active = (
        await conn.execute(
            select(
                Session.id,
                Session.therapist_id,
                Session.client_id,
                Session.start_time,
                Session.end_time,
                Session.location_id,
                Session.location_type,
                Session.authorization_id,
                Session.service_code,
            )
            .where(*where, Session.status != "cancelled")
            .order_by(Session.start_time, Session.id)
        )
    ).all()
    therapists = await _visible_therapists(
        conn, principal, list(dict.fromkeys(r.therapist_id for r in active))
    )
    calendars = await load_calendars(
        conn,
        organization_id=principal.organization_id,
        therapist_ids=therapists,
        start=range_start,
        end=range_end,
        now=now,
        with_busy=False,
    )
    if not principal.can(Capability.SEE_AUTHORIZATIONS):
        # Authorization conflicts would reveal authorization data to a therapist.
        active_rows = [r for r in active if r.therapist_id in calendars]
        conflicts = await find_conflicts(
            conn,
            sessions=active_rows,
            calendars=calendars,
            organization_zone=principal.zone,
            buffer_minutes=principal.settings.buffer_minutes,
        )
        return [c for c in conflicts if not c["type"].startswith("authorization_")]
    return await find_conflicts(
        conn,
        sessions=list(active),
        calendars=calendars,
        organization_zone=principal.zone,
        buffer_minutes=principal.settings.buffer_minutes,
    )


async def _serialize(
    conn: AsyncConnection, principal: Principal, rows: Any, now: datetime, *, detailed: bool
) -> list[dict[str, Any]]:
    balances = auth_ends = None
    if principal.can(Capability.SEE_AUTHORIZATIONS):
        ids = authorization_ids(rows)
        balances, auth_ends = await balances_and_end_dates(conn, ids, now)
    return [
        serialize_session(r, balances=balances, auth_ends=auth_ends, detailed=detailed)
        for r in rows
    ]


def _minutes(dialect: str) -> Any:
    if dialect == "sqlite":
        return func.round(
            (func.julianday(Session.end_time) - func.julianday(Session.start_time)) * 1440
        )
    return func.extract("epoch", Session.end_time - Session.start_time) / 60


async def sessions_page(
    *, db: Database, principal: Principal, params: SessionsParams, now: datetime
) -> dict[str, Any]:
    """One page of sessions, newest first, with a summary over every row matching the filters."""
    started = time.perf_counter()
    tz_name = params.time_zone or principal.organization_time_zone
    tz = zone(tz_name)
    where: list[Any] = [session_scope(principal)]
    if params.therapist_id:
        where.append(Session.therapist_id == params.therapist_id)
    if params.client_id:
        where.append(Session.client_id == params.client_id)
    if params.status:
        where.append(Session.status.in_(params.status))
    if params.location_type:
        where.append(Session.location_type == params.location_type)
    if params.start_date:
        where.append(Session.start_time >= day_bounds(params.start_date, params.start_date, tz)[0])
    if params.end_date:
        where.append(Session.start_time < day_bounds(params.end_date, params.end_date, tz)[1])
    position = decode_cursor(params.cursor) if params.cursor else None

    async with db.read() as conn:
        await require_visible(
            conn,
            principal,
            therapist_ids=[params.therapist_id] if params.therapist_id else [],
            client_ids=[params.client_id] if params.client_id else [],
        )
        status = Session.status
        summary_row = (
            await conn.execute(
                select(
                    func.count(),
                    func.count().filter(status == "scheduled"),
                    func.count().filter(status == "in_progress"),
                    func.count().filter(status == "completed"),
                    func.count().filter(status == "cancelled"),
                    func.count().filter(status == "no_show"),
                    func.count().filter(and_(status == "scheduled", Session.start_time > now)),
                    func.coalesce(
                        func.sum(cast(_minutes(db.dialect), Float)).filter(status != "cancelled"),
                        0,
                    ),
                )
                .select_from(Session)
                .where(*where)
            )
        ).one()
        page_query = session_rows(detailed=True).where(*where)
        if position is not None:
            page_query = page_query.where(
                tuple_(Session.start_time, Session.id) < tuple_(*position)
            )
        else:
            page_query = page_query.where(true()).offset((params.page - 1) * params.limit)
        rows = (
            await conn.execute(
                page_query.order_by(Session.start_time.desc(), Session.id.desc()).limit(
                    params.limit + 1
                )
            )
        ).all()
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        sessions = await _serialize(conn, principal, rows, now, detailed=True)

    total = int(summary_row[0])
    return {
        "success": True,
        "data": {
            "sessions": sessions,
            "pagination": {
                "page": None if position else params.page,
                "limit": params.limit,
                "total": total,
                "total_pages": math.ceil(total / params.limit) if total else 0,
                "has_next_page": more,
                "has_previous_page": position is not None or params.page > 1,
                "next_cursor": encode_cursor(rows[-1].start_time, rows[-1].id) if more else None,
            },
            "summary": {
                "total_sessions": total,
                "scheduled": summary_row[1],
                "in_progress": summary_row[2],
                "completed": summary_row[3],
                "cancelled": summary_row[4],
                "no_show": summary_row[5],
                "upcoming": summary_row[6],
                "scheduled_minutes": round(float(summary_row[7] or 0)),
            },
        },
        "filters": {
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
        "performance": {"query_time_ms": round((time.perf_counter() - started) * 1000, 2)},
    }
