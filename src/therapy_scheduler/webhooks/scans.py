"""Events that come due with time rather than with a change (docs/WEBHOOKS.md): session reminders
and authorization warnings, found by a periodic scan and emitted once each (a unique key per
(session, lead time, start) or (authorization, service, threshold) in the outbox), so a restart
neither loses nor repeats them.

Reminder lead times are absolute durations before the session's UTC start: a 48-hour reminder is due
48 real hours before the session, whatever DST does to the wall clock in between.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.units import balances_and_end_dates
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.jobs import try_lock_job
from therapy_scheduler.models import (
    Authorization,
    Organization,
    Session,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

SCANNED = frozenset({"session.reminder_due", "authorization.low_units", "authorization.expiring"})


async def subscribed_organizations(conn: AsyncConnection) -> dict[uuid.UUID, set[str]]:
    """The scanned event types each organization has an enabled endpoint for."""
    wanted: dict[uuid.UUID, set[str]] = defaultdict(set)
    rows = await conn.execute(
        select(WebhookEndpoint.organization_id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.enabled.is_(True)
        )
    )
    for organization_id, types in rows:
        wanted[organization_id].update(SCANNED.intersection(types))
    return {k: v for k, v in wanted.items() if v}


async def forget_old_events(conn: AsyncConnection, cutoff: datetime) -> int:
    """Delete events that happened before `cutoff` and have no pending delivery, with their deliveries
    and attempts (ON DELETE CASCADE). Authorization warnings stay: their key is what keeps them from
    being emitted again while the authorization is still low or near its end."""
    pending = exists().where(
        WebhookDelivery.event_seq == WebhookEvent.seq, WebhookDelivery.status == "pending"
    )
    gone = await conn.execute(
        delete(WebhookEvent).where(
            WebhookEvent.occurred_at < cutoff,
            WebhookEvent.fanned_out.is_(True),
            or_(WebhookEvent.dedupe_key.is_(None), WebhookEvent.dedupe_key.like("reminder:%")),
            ~pending,
        )
    )
    return int(gone.rowcount or 0)


async def forget_once(db: Database, now: datetime, *, retention_days: int) -> int:
    """Forget events older than `retention_days` (one process at a time); returns how many."""
    async with db.write() as conn:
        if not await try_lock_job(conn, "webhook-forget"):
            return 0
        return await forget_old_events(conn, now - timedelta(days=retention_days))


async def scan_once(db: Database, now: datetime) -> int:
    """Emit every reminder and authorization warning due at `now` not yet emitted; returns how many."""
    async with db.read() as conn:
        if not await subscribed_organizations(conn):
            return 0  # nobody wants them: no write transaction at all
    async with db.write() as conn:
        if not await try_lock_job(conn, "webhook-scan"):
            return 0
        wanted = await subscribed_organizations(conn)
        if not wanted:
            return 0
        organizations = list(
            await conn.execute(
                select(Organization.id, Organization.time_zone, Organization.settings).where(
                    Organization.id.in_(list(wanted))
                )
            )
        )
        emitted = 0
        for org in organizations:
            settings = OrganizationSettings.load(org.settings)
            types = wanted[org.id]
            if "session.reminder_due" in types:
                emitted += await _reminders(conn, org.id, settings, now)
            if types & {"authorization.low_units", "authorization.expiring"}:
                emitted += await _authorizations(
                    conn, org.id, ZoneInfo(org.time_zone), settings, types, now
                )
    return emitted


def reminder_key(session_id: uuid.UUID, lead_minutes: int, start: datetime) -> str:
    # The start is part of the key: a session moved to another time gets its reminders again.
    return f"reminder:{session_id}:{lead_minutes}:{int(start.timestamp())}"


async def _reminders(
    conn: AsyncConnection, organization_id: uuid.UUID, settings: OrganizationSettings, now: datetime
) -> int:
    leads = settings.reminder_lead_minutes
    if not leads:
        return 0
    sessions = list(
        await conn.execute(
            select(Session.id, Session.therapist_id, Session.client_id, Session.start_time)
            .where(
                Session.organization_id == organization_id,
                Session.status == "scheduled",
                Session.start_time > now,
                Session.start_time <= now + timedelta(minutes=max(leads)),
            )
            .order_by(Session.start_time, Session.id)
        )
    )
    due: list[tuple[Any, int, datetime, str]] = []
    for s in sessions:
        for lead in leads:
            due_at = s.start_time - timedelta(minutes=lead)
            if due_at <= now:
                due.append((s, lead, due_at, reminder_key(s.id, lead, s.start_time)))
    return await _emit_new(
        conn,
        [
            (
                key,
                {
                    "organization_id": organization_id,
                    "event_type": "session.reminder_due",
                    "subject_id": s.id,
                    "ids": {
                        "session_id": s.id,
                        "therapist_id": s.therapist_id,
                        "client_id": s.client_id,
                    },
                    "facts": {"lead_minutes": lead},
                    "occurred_at": due_at,
                },
            )
            for s, lead, due_at, key in due
        ],
    )


async def _authorizations(
    conn: AsyncConnection,
    organization_id: uuid.UUID,
    zone: ZoneInfo,
    settings: OrganizationSettings,
    types: set[str],
    now: datetime,
) -> int:
    today = now.astimezone(zone).date()
    rows = list(
        await conn.execute(
            select(Authorization.id, Authorization.client_id, Authorization.end_date).where(
                Authorization.organization_id == organization_id,
                Authorization.status == "approved",
                Authorization.start_date <= today,
                Authorization.end_date >= today,
            )
        )
    )
    if not rows:
        return 0
    found: list[tuple[str, dict[str, Any]]] = []
    days = settings.authorization_expiring_days
    if "authorization.expiring" in types and days > 0:
        for a in rows:
            if (a.end_date - today).days <= days:
                found.append(
                    (
                        f"authorization-expiring:{a.id}:{a.end_date.isoformat()}:{days}",
                        {
                            "organization_id": organization_id,
                            "event_type": "authorization.expiring",
                            "subject_id": a.id,
                            "ids": {"authorization_id": a.id, "client_id": a.client_id},
                            "facts": {"days_before": days},
                        },
                    )
                )
    threshold = settings.authorization_low_units_threshold
    if "authorization.low_units" in types and threshold > 0:
        clients = {a.id: a.client_id for a in rows}
        balances, _ = await balances_and_end_dates(conn, list(clients), now)
        for (authorization_id, service_code), balance in sorted(balances.items()):
            if balance.remaining < threshold:
                found.append(
                    (
                        f"authorization-low:{authorization_id}:{service_code}:{threshold}",
                        {
                            "organization_id": organization_id,
                            "event_type": "authorization.low_units",
                            "subject_id": authorization_id,
                            "ids": {
                                "authorization_id": authorization_id,
                                "client_id": clients[authorization_id],
                            },
                            "facts": {"service_code": service_code, "threshold": threshold},
                        },
                    )
                )
    return await _emit_new(conn, found)


async def _emit_new(conn: AsyncConnection, found: list[tuple[str, dict[str, Any]]]) -> int:
    emitted = 0
    for start in range(0, len(found), 500):
        chunk = found[start : start + 500]
        seen = await outbox.existing_dedupe_keys(conn, [key for key, _ in chunk])
        for key, event in chunk:
            if key not in seen:
                await outbox.emit(conn, dedupe_key=key, **event)
                emitted += 1
    return emitted
