"""SQL of the calendar feeds (SQLAlchemy Core). A feed fetch runs at most three queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.feeds.ics import FeedSession, SeriesRecurrence
from therapy_scheduler.models import (
    MAX_SESSION_LENGTH,
    CalendarFeed,
    Client,
    Hold,
    HoldOccurrence,
    Session,
    Therapist,
    User,
)

FEED_COLUMNS = (
    CalendarFeed.id,
    CalendarFeed.organization_id,
    CalendarFeed.therapist_id,
    CalendarFeed.label,
    CalendarFeed.created_by,
    CalendarFeed.created_at,
    CalendarFeed.revoked_at,
)


async def live_feed(conn: AsyncConnection, token_hash: str) -> Any:
    """The feed of this token hash if it still works: not revoked, therapist not archived, and its
    creator still an active user (a feed acts on its creator's authority)."""
    return (
        await conn.execute(
            select(CalendarFeed.id, CalendarFeed.organization_id, CalendarFeed.therapist_id)
            .add_columns(Therapist.time_zone)
            .join(Therapist, Therapist.id == CalendarFeed.therapist_id)
            .join(User, User.id == CalendarFeed.created_by)
            .where(
                CalendarFeed.token_hash == token_hash,
                CalendarFeed.revoked_at.is_(None),
                Therapist.archived_at.is_(None),
                Therapist.organization_id == CalendarFeed.organization_id,
                User.is_active.is_(True),
            )
        )
    ).first()


async def feed_sessions(
    conn: AsyncConnection,
    *,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    window: tuple[datetime, datetime],
) -> list[FeedSession]:
    """The therapist's live sessions in the window, plus every live session of the series that have
    one in the window (series are bounded by the recurrence limit)."""
    start, end = window
    mine = and_(
        Session.organization_id == organization_id,
        Session.therapist_id == therapist_id,
        Session.status != "cancelled",
    )
    in_window = and_(
        Session.start_time < end,
        Session.end_time > start,
        Session.start_time > start - MAX_SESSION_LENGTH,  # index lower bound (implied)
    )
    window_series = (
        select(Session.series_id)
        .where(mine, in_window, Session.series_id.is_not(None))
        .scalar_subquery()
    )
    client = aliased(Client, name="c")
    rows = await conn.execute(
        select(
            Session.id,
            Session.client_id,
            client.full_name,
            Session.service_code,
            Session.location_type,
            Session.start_time,
            Session.end_time,
            Session.series_id,
            Session.updated_at,
        )
        .join(client, client.id == Session.client_id)
        .where(mine, or_(in_window, Session.series_id.in_(window_series)))
        .order_by(Session.start_time, Session.id)
    )
    return [
        FeedSession(
            id=r.id,
            client_id=r.client_id,
            client_name=r.full_name,
            service_code=r.service_code,
            location_type=r.location_type,
            start_time=r.start_time,
            end_time=r.end_time,
            series_id=r.series_id,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def series_recurrences(
    conn: AsyncConnection, organization_id: uuid.UUID, series_ids: list[uuid.UUID]
) -> dict[uuid.UUID, SeriesRecurrence]:
    """The recurrence each series was booked with (from the hold that created it), if it has one.

    The rule's DTSTART is the hold's first occurrence, or else the series' earliest session.
    """
    if not series_ids:
        return {}
    first_occurrence = aliased(HoldOccurrence, name="first_occurrence")
    earliest = (
        select(func.min(Session.start_time))
        .where(Session.series_id == Hold.series_id, Session.organization_id == organization_id)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(
            Hold.series_id,
            Hold.recurrence,
            Hold.time_zone,
            first_occurrence.start_time.label("first_start"),
            earliest.label("earliest_start"),
        )
        .outerjoin(
            first_occurrence,
            and_(first_occurrence.hold_id == Hold.id, first_occurrence.occurrence_index == 0),
        )
        .where(
            Hold.organization_id == organization_id,
            Hold.series_id.in_(series_ids),
            Hold.recurrence.is_not(None),
        )
        .order_by(Hold.created_at)
    )
    out: dict[uuid.UUID, SeriesRecurrence] = {}
    for r in rows:
        rule = (r.recurrence or {}).get("rrule") if isinstance(r.recurrence, dict) else None
        dtstart = r.first_start or r.earliest_start
        if not isinstance(rule, str) or not rule or dtstart is None:
            continue
        out[r.series_id] = SeriesRecurrence(
            series_id=r.series_id, rrule=rule, time_zone=r.time_zone, dtstart=dtstart
        )
    return out
