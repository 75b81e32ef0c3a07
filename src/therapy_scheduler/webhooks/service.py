"""Webhook endpoints for admins (docs/WEBHOOKS.md): register, change, rotate the secret, remove, and
see and repeat deliveries. Every change is audited; the secret appears only in the answers of
create and rotate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.errors import InvalidCursor
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.webhooks import queries
from therapy_scheduler.webhooks.errors import WebhookNotFound, invalid
from therapy_scheduler.webhooks.schemas import (
    DeliveryListParams,
    EndpointCreate,
    EndpointPatch,
    RotateBody,
)
from therapy_scheduler.webhooks.signing import new_secret
from therapy_scheduler.webhooks.targets import TargetRefused, check_target


@dataclass(frozen=True)
class WebhookContext:
    db: Database
    principal: Principal
    request_id: str | None
    allow_private_targets: bool

    def require_admin(self) -> None:
        self.principal.require(Capability.MANAGE_WEBHOOKS, "Only admins manage webhooks")


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def endpoint_json(row: Any, now: datetime) -> dict[str, Any]:
    rotating = row.previous_secret_expires_at is not None and row.previous_secret_expires_at > now
    return {
        "id": str(row.id),
        "url": row.url,
        "description": row.description,
        "event_types": list(row.event_types),
        "enabled": bool(row.enabled),
        "disabled_reason": row.disabled_reason,
        "consecutive_failures": int(row.consecutive_failures),
        "previous_secret_expires_at": _iso(row.previous_secret_expires_at) if rotating else None,
        "created_at": iso_utc(row.created_at),
        "updated_at": iso_utc(row.updated_at),
    }


async def _checked_url(ctx: WebhookContext, url: str) -> str:
    try:
        await check_target(url, allow_private=ctx.allow_private_targets)
    except TargetRefused as refused:
        raise invalid("url", refused.message, f"url.{refused.reason}") from None
    return url


async def list_endpoints(ctx: WebhookContext, now: datetime) -> dict[str, Any]:
    """Every endpoint of the organization, without secrets."""
    ctx.require_admin()
    async with ctx.db.read() as conn:
        rows = await queries.list_endpoints(conn, ctx.principal.organization_id)
    return ok(data=[endpoint_json(r, now) for r in rows])


async def get_endpoint(
    ctx: WebhookContext, endpoint_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """One endpoint, without its secret."""
    ctx.require_admin()
    async with ctx.db.read() as conn:
        row = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
    if row is None:
        raise WebhookNotFound()
    return ok(data=endpoint_json(row, now))


async def create_endpoint(
    ctx: WebhookContext, body: EndpointCreate, now: datetime
) -> dict[str, Any]:
    """Register an endpoint; its signing secret is in this answer and never again."""
    ctx.require_admin()
    url = await _checked_url(ctx, body.url)
    endpoint_id = uuid.uuid4()
    secret = new_secret()
    async with ctx.db.write() as conn:
        await queries.insert_endpoint(
            conn,
            id=endpoint_id,
            organization_id=ctx.principal.organization_id,
            url=url,
            description=body.description,
            event_types=body.event_types,
            enabled=body.enabled,
            secret=secret,
            consecutive_failures=0,
            created_by=ctx.principal.user_id,
            created_at=now,
            updated_at=now,
        )
        await _audit(ctx, conn, "webhook.create", endpoint_id, {"event_types": body.event_types})
        row = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
    return ok(data={**endpoint_json(row, now), "secret": secret})


async def update_endpoint(
    ctx: WebhookContext, endpoint_id: uuid.UUID, patch: EndpointPatch, now: datetime
) -> dict[str, Any]:
    """Change the URL, event types, description or whether it is enabled; enabling it again
    clears its run of failures."""
    ctx.require_admin()
    changes = patch.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):
        if name in changes and changes[name] is None:
            raise invalid(name, "may not be null")
    if "url" in changes:
        changes["url"] = await _checked_url(ctx, changes["url"])
    async with ctx.db.write() as conn:
        current = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
        if current is None:
            raise WebhookNotFound()
        values = dict(changes)
        if changes.get("enabled") is True:
            values.update(consecutive_failures=0, disabled_reason=None)
        elif changes.get("enabled") is False:
            values.update(disabled_reason="admin")
        values["updated_at"] = now
        await queries.update_endpoint(conn, ctx.principal.organization_id, endpoint_id, **values)
        await _audit(ctx, conn, "webhook.update", endpoint_id, {"fields": sorted(changes)})
        row = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
    return ok(data=endpoint_json(row, now))


async def delete_endpoint(ctx: WebhookContext, endpoint_id: uuid.UUID) -> dict[str, Any]:
    """Remove the endpoint with its delivery records."""
    ctx.require_admin()
    async with ctx.db.write() as conn:
        if not await queries.delete_endpoint(conn, ctx.principal.organization_id, endpoint_id):
            raise WebhookNotFound()
        await _audit(ctx, conn, "webhook.delete", endpoint_id, {})
    return ok(deleted=True, id=str(endpoint_id))


async def rotate_secret(
    ctx: WebhookContext, endpoint_id: uuid.UUID, body: RotateBody, now: datetime
) -> dict[str, Any]:
    """A new secret, shown in this answer only; the previous one also signs for `overlap_seconds`."""
    ctx.require_admin()
    secret = new_secret()
    expires = now + timedelta(seconds=body.overlap_seconds)
    async with ctx.db.write() as conn:
        previous = await queries.current_secret(conn, endpoint_id)
        row = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
        if row is None or previous is None:
            raise WebhookNotFound()
        await queries.update_endpoint(
            conn,
            ctx.principal.organization_id,
            endpoint_id,
            secret=secret,
            previous_secret=previous if body.overlap_seconds else None,
            previous_secret_expires_at=expires if body.overlap_seconds else None,
            updated_at=now,
        )
        await _audit(
            ctx,
            conn,
            "webhook.rotate_secret",
            endpoint_id,
            {"overlap_seconds": body.overlap_seconds},
        )
        row = await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id)
    return ok(data={**endpoint_json(row, now), "secret": secret})


async def list_deliveries(
    ctx: WebhookContext, endpoint_id: uuid.UUID, params: DeliveryListParams
) -> dict[str, Any]:
    """The endpoint's deliveries, newest event first, a page at a time, each with its attempts."""
    ctx.require_admin()
    before_seq = None
    if params.cursor:
        # The cursor names its endpoint: one endpoint's cursor is refused on another's list.
        cursor_endpoint, before_seq = decode_cursor(
            "webhook_deliveries", params.cursor, (uuid.UUID, int)
        )
        if cursor_endpoint != endpoint_id:
            raise InvalidCursor("The cursor is not valid; start again from the first page")
    async with ctx.db.read() as conn:
        if await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id) is None:
            raise WebhookNotFound()
        rows = await queries.deliveries(
            conn, endpoint_id, params.status, params.limit + 1, before_seq=before_seq
        )
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        attempts = await queries.attempts_of(conn, [r.id for r in rows])
    by_delivery: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(
            {
                "attempted_at": iso_utc(a.attempted_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
        )
    return ok(
        data=[
            {
                "id": str(r.id),
                "event_id": str(r.event_id),
                "event_type": r.event_type,
                "occurred_at": iso_utc(r.occurred_at),
                "status": r.status,
                "attempt_count": r.attempts,
                "next_attempt_at": iso_utc(r.next_attempt_at) if r.status == "pending" else None,
                "last_attempt_at": _iso(r.last_attempt_at),
                "last_status_code": r.last_status_code,
                "last_error": r.last_error,
                "completed_at": _iso(r.completed_at),
                "attempts": by_delivery.get(r.id, []),
            }
            for r in rows
        ],
        pagination={
            "limit": params.limit,
            "has_more": more,
            "next_cursor": encode_cursor("webhook_deliveries", endpoint_id, rows[-1].event_seq)
            if more
            else None,
        },
    )


async def redeliver(
    ctx: WebhookContext, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """Send the delivery again (same event id, fresh retry window), whatever its state."""
    ctx.require_admin()
    async with ctx.db.write() as conn:
        if await queries.endpoint(conn, ctx.principal.organization_id, endpoint_id) is None:
            raise WebhookNotFound()
        if not await queries.requeue_delivery(conn, endpoint_id, delivery_id, now):
            raise WebhookNotFound("delivery")
        await _audit(ctx, conn, "webhook.redeliver", endpoint_id, {"delivery_id": str(delivery_id)})
    return ok(id=str(delivery_id), status="pending", next_attempt_at=iso_utc(now))


async def _audit(
    ctx: WebhookContext, conn: Any, action: str, endpoint_id: uuid.UUID, details: dict[str, Any]
) -> None:
    await audit.record(
        conn,
        organization_id=ctx.principal.organization_id,
        actor_user_id=ctx.principal.user_id,
        action=action,
        entity_type="webhook_endpoint",
        entity_id=endpoint_id,
        request_id=ctx.request_id,
        details=details,
    )
