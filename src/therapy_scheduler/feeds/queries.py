"""SQL of the calendar feeds (SQLAlchemy Core). A feed fetch runs at most three queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import ColumnElement, Row, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.auth.scope import therapist_scope
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
# A feed as listed (FEED_COLUMNS): id, organization_id, therapist_id, label, created_by, created_at,
# revoked_at. Never its token hash.
FeedRow: TypeAlias = Row[
    uuid.UUID, uuid.UUID, uuid.UUID, str | None, uuid.UUID, datetime, datetime | None
]
# A feed that still works: id, organization_id, therapist_id, and its therapist's time zone.
LiveFeed: TypeAlias = Row[uuid.UUID, uuid.UUID, uuid.UUID, str]


def _feed_scope(principal: Principal) -> ColumnElement[bool]:
    """Feeds the caller may see: the organization's (admin, scheduler) or their own therapist's."""
    in_org = CalendarFeed.organization_id == principal.organization_id
    if principal.can(Capability.READ_ORG_SCHEDULE):
        return in_org
    return in_org & (CalendarFeed.therapist_id == principal.therapist_id)


async def feed_therapist_exists(
    conn: AsyncConnection, principal: Principal, therapist_id: uuid.UUID
) -> bool:
    """Whether the therapist is one the caller may see and is not archived."""
    found = (
        await conn.execute(
            select(Therapist.id).where(
                therapist_scope(principal),
                Therapist.id == therapist_id,
                Therapist.archived_at.is_(None),
            )
        )
    ).first()
    return found is not None


async def insert_feed(
    conn: AsyncConnection,
    *,
    feed_id: uuid.UUID,
    organization_id: uuid.UUID,
    therapist_id: uuid.UUID,
    token_hash: str,
    label: str | None,
    created_by: uuid.UUID,
) -> None:
    await conn.execute(
        insert(CalendarFeed).values(
            id=feed_id,
            organization_id=organization_id,
            therapist_id=therapist_id,
            token_hash=token_hash,
            label=label,
            created_by=created_by,
        )
    )


async def feed(conn: AsyncConnection, feed_id: uuid.UUID) -> FeedRow:
    """A feed known to exist (just written in this transaction)."""
    return (await conn.execute(select(*FEED_COLUMNS).where(CalendarFeed.id == feed_id))).one()


async def visible_feed(
    conn: AsyncConnection, principal: Principal, feed_id: uuid.UUID
) -> FeedRow | None:
    """The feed if the caller may see it, revoked or not."""
    return (
        await conn.execute(
            select(*FEED_COLUMNS).where(_feed_scope(principal), CalendarFeed.id == feed_id)
        )
    ).first()


async def feed_page(
    conn: AsyncConnection,
    principal: Principal,
    *,
    therapist_id: uuid.UUID | None,
    include_revoked: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[FeedRow]:
    """The feeds the caller may see, newest first, after the (created_at, id) position `after`: up
    to `limit` + 1 of them, so that the caller knows whether another page follows."""
    query = select(*FEED_COLUMNS).where(_feed_scope(principal))
    if therapist_id is not None:
        query = query.where(CalendarFeed.therapist_id == therapist_id)
    if not include_revoked:
        query = query.where(CalendarFeed.revoked_at.is_(None))
    if after is not None:
        query = query.where(tuple_(CalendarFeed.created_at, CalendarFeed.id) < tuple_(*after))
    query = query.order_by(CalendarFeed.created_at.desc(), CalendarFeed.id.desc())
    return (await conn.execute(query.limit(limit + 1))).all()


async def revoke_feed(
    conn: AsyncConnection, feed_id: uuid.UUID, *, now: datetime, revoked_by: uuid.UUID
) -> None:
    await conn.execute(
        update(CalendarFeed)
        .where(CalendarFeed.id == feed_id)
        .values(revoked_at=now, revoked_by=revoked_by)
    )


async def live_feed(conn: AsyncConnection, token_hash: str) -> LiveFeed | None:
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
