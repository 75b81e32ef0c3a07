"""Rules of the calendar feeds: who may create, list and revoke them, and what a feed shows."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.errors import NotFound, ValidationFailed
from therapy_scheduler.feeds import queries
from therapy_scheduler.feeds.ics import FeedSession, render_calendar
from therapy_scheduler.feeds.schemas import CreateFeedBody, ListFeedsParams
from therapy_scheduler.infra.audit_log import record
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc

WINDOW_BEFORE = timedelta(days=30)
WINDOW_AFTER = timedelta(days=180)
# 32 random bytes, URL-safe base64 without padding: 256 bits, 43 characters.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _serialize(row: queries.FeedRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "therapist_id": str(row.therapist_id),
        "label": row.label,
        "created_by": str(row.created_by),
        "created_at": iso_utc(row.created_at),
        "revoked_at": iso_utc(row.revoked_at) if row.revoked_at else None,
    }


async def create_feed(
    *, db: Database, principal: Principal, body: CreateFeedBody, request_id: str | None
) -> tuple[dict[str, Any], str]:
    """A new feed for a therapist the caller may see (a therapist: only themselves); returns the
    feed and its token, which is never stored or shown again."""
    therapist_id = body.therapist_id or principal.therapist_id
    if therapist_id is None:
        raise ValidationFailed(
            "therapist_id is required",
            details={"fields": [{"field": "therapist_id", "message": "required"}]},
        )
    token = new_token()
    async with db.write() as conn:
        if not await queries.feed_therapist_exists(conn, principal, therapist_id):
            raise NotFound("Therapist not found", details={"field": "therapist_id"})
        feed_id = uuid.uuid4()
        await queries.insert_feed(
            conn,
            feed_id=feed_id,
            organization_id=principal.organization_id,
            therapist_id=therapist_id,
            token_hash=token_hash(token),
            label=body.label,
            created_by=principal.user_id,
        )
        await record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="calendar_feed.create",
            entity_type="calendar_feed",
            entity_id=feed_id,
            request_id=request_id,
            details={"therapist_id": str(therapist_id)},
        )
        row = await queries.feed(conn, feed_id)
    return _serialize(row), token


async def list_feeds(
    *, db: Database, principal: Principal, params: ListFeedsParams
) -> dict[str, Any]:
    """The feeds the caller may see, newest first (never their tokens)."""
    position = (
        decode_cursor("feeds", params.cursor, (datetime, uuid.UUID)) if params.cursor else None
    )
    async with db.read() as conn:
        rows = await queries.feed_page(
            conn,
            principal,
            therapist_id=params.therapist_id,
            include_revoked=params.include_revoked,
            after=position,
            limit=params.limit,
        )
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    return ok(
        feeds=[_serialize(r) for r in rows],
        pagination={
            "limit": params.limit,
            "has_more": more,
            "next_cursor": encode_cursor("feeds", rows[-1].created_at, rows[-1].id)
            if more
            else None,
        },
    )


async def revoke_feed(
    *, db: Database, principal: Principal, feed_id: uuid.UUID, now: datetime, request_id: str | None
) -> dict[str, Any]:
    """Revoke a feed the caller may see; its URL answers 404 from now on. Revoking twice is a no-op."""
    async with db.write() as conn:
        row = await queries.visible_feed(conn, principal, feed_id)
        if row is None:
            raise NotFound("Calendar feed not found")
        if row.revoked_at is not None:
            return ok(feed=_serialize(row), already_revoked=True)
        await queries.revoke_feed(conn, feed_id, now=now, revoked_by=principal.user_id)
        await record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="calendar_feed.revoke",
            entity_type="calendar_feed",
            entity_id=feed_id,
            request_id=request_id,
            details={"therapist_id": str(row.therapist_id)},
        )
        row = await queries.feed(conn, feed_id)
    return ok(feed=_serialize(row), already_revoked=False)


@dataclass(frozen=True)
class RenderedFeed:
    feed_id: uuid.UUID
    organization_id: uuid.UUID
    body: bytes
    sessions: list[FeedSession]


async def render_feed(*, db: Database, token: str, now: datetime) -> RenderedFeed:
    """The ICS of a live feed: the therapist's sessions from 30 days ago to 180 days ahead."""
    if not _TOKEN.match(token):
        raise NotFound("Calendar feed not found")
    window = (now - WINDOW_BEFORE, now + WINDOW_AFTER)
    async with db.read() as conn:
        feed = await queries.live_feed(conn, token_hash(token))
        if feed is None:
            raise NotFound("Calendar feed not found")
        sessions = await queries.feed_sessions(
            conn,
            organization_id=feed.organization_id,
            therapist_id=feed.therapist_id,
            window=window,
        )
        series_ids = sorted({s.series_id for s in sessions if s.series_id is not None})
        recurrences = await queries.series_recurrences(conn, feed.organization_id, series_ids)
    body = render_calendar(
        sessions=sessions,
        recurrences=recurrences,
        therapist_zone=feed.time_zone,
        window=window,
    )
    return RenderedFeed(
        feed_id=feed.id, organization_id=feed.organization_id, body=body, sessions=sessions
    )
