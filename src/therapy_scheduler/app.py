"""create_app(): settings → database → routers → error handlers. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute

from therapy_scheduler import __version__
from therapy_scheduler.admin.router import router as admin_router
from therapy_scheduler.audit.router import router as audit_router
from therapy_scheduler.auth.principal import KnownCallers
from therapy_scheduler.auth.tokens import TokenVerifier
from therapy_scheduler.board.router import install_board
from therapy_scheduler.booking.purge import run_purge_loop
from therapy_scheduler.booking.router import router as booking_router
from therapy_scheduler.calendar import freed as freed_slots
from therapy_scheduler.config import Settings, get_settings
from therapy_scheduler.dropdown.router import router as reference_router
from therapy_scheduler.errors import AppError, Forbidden
from therapy_scheduler.feeds.router import router as feeds_router
from therapy_scheduler.infra import heap
from therapy_scheduler.infra.audit_writer import AuditWriter
from therapy_scheduler.infra.cache import make_cache
from therapy_scheduler.infra.client import client_address
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.http import ServiceMiddleware
from therapy_scheduler.infra.metrics import Metrics, MetricsAccess
from therapy_scheduler.infra.ratelimit import RateLimits, make_counter
from therapy_scheduler.infra.route_labels import RouteLabels
from therapy_scheduler.kit.envelope import JSON, error_body, ok
from therapy_scheduler.kit.openapi import ErrorEnvelope
from therapy_scheduler.migrations import current_revision, head_revision
from therapy_scheduler.reports.router import router as reports_router
from therapy_scheduler.schedule.router import router as schedule_router
from therapy_scheduler.waitlist.matcher import process_freed
from therapy_scheduler.waitlist.offers import run_waitlist_loop
from therapy_scheduler.waitlist.router import router as waitlist_router
from therapy_scheduler.webhooks.dispatcher import run_dispatch_loop
from therapy_scheduler.webhooks.router import router as webhooks_router

log = logging.getLogger("therapy_scheduler")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = Database.from_settings(settings)
    metrics = Metrics()
    audit_writer = AuditWriter(database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replica = (
            asyncio.create_task(database.replica.run(settings.replica_check_interval_seconds))
            if database.replica is not None
            else None
        )
        purge = (
            asyncio.create_task(
                run_purge_loop(database, metrics, settings.hold_purge_interval_seconds)
            )
            if settings.hold_purge_interval_seconds > 0
            else None
        )
        # Webhook deliveries run beside the requests, never in them (docs/WEBHOOKS.md).
        dispatcher = (
            asyncio.create_task(run_dispatch_loop(database, settings, metrics))
            if settings.webhook_dispatch_interval_seconds > 0
            else None
        )
        waitlist = (
            asyncio.create_task(
                run_waitlist_loop(database, metrics, settings.waitlist_interval_seconds)
            )
            if settings.waitlist_interval_seconds > 0
            else None
        )
        heap.settle()
        yield
        heap.release()
        for task in (replica, purge, dispatcher, waitlist):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await close_app(app)

    app = _fastapi(lifespan)
    app.state.settings = settings
    app.state.db = database
    tokens = TokenVerifier(settings)
    app.state.tokens = tokens
    app.state.callers = KnownCallers()
    app.state.cache = make_cache(settings)
    app.state.metrics = metrics
    app.state.metrics_access = MetricsAccess.from_settings(settings)
    app.state.audit_writer = audit_writer
    if database.replica is not None:
        database.replica.attach(metrics)

    async def match_freed(db: Database, ids: Any) -> Any:
        return await process_freed(db, ids, metrics=metrics)

    # Slots freed by a cancel, release, expiry, reschedule or removed time off are matched against
    # the waitlist after their transaction commits (docs/WAITLIST.md).
    freed_slots.register(database, match_freed, wait_seconds=settings.waitlist_settle_seconds)

    _install_error_handlers(app)
    _install_operational_routes(app)
    app.router.routes.extend(_feature_routes())
    install_board(app)
    rate_counter = make_counter(settings.redis_url, settings.rate_limit_prefix)
    app.state.rate_counter = rate_counter
    limits = RateLimits(
        counter=rate_counter,
        subject=tokens.subject,
        per_user=settings.rate_limit("user"),
        per_ip=settings.rate_limit("ip"),
    )
    app.add_middleware(
        ServiceMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        labels=RouteLabels(app.router),
        limits=limits,
    )
    return app


def _fastapi(lifespan: Any = None) -> FastAPI:
    return FastAPI(
        title="therapy-scheduler",
        version=__version__,
        description=(
            "Scheduling backend for behavioural-therapy practices. Every response uses the envelope "
            '`{"success": true, ...}` or `{"success": false, "error", "code", "request_id", "details"}`.'
        ),
        default_response_class=JSON,
        lifespan=lifespan,
    )


# The features' routers in the order the router tries them, the busiest first: FastAPI tries a
# request's path against every route before the one it is routed to (about 2 µs a route; a hold
# came after the 61 routes of the admin and reporting routers, 120 µs of each request). Their
# paths are disjoint (tests/infra/test_shared_routes.py), so the order decides only how soon a
# route is found; the board's pages come after them all.
FEATURE_ROUTERS = (
    schedule_router,
    reference_router,
    booking_router,
    waitlist_router,
    feeds_router,
    reports_router,
    audit_router,
    admin_router,
    webhooks_router,
)


@functools.cache
def _feature_routes() -> tuple[BaseRoute, ...]:
    """The features' routers, included once per process into an app built like every app, and shared
    by the apps: FastAPI builds an included router's routes (each parameter's validator, each
    dependency tree) at its first request, once per inclusion, about 0.2 s of CPU for ours; an app
    per test made that a third of the suite's CPU (docs/DECISIONS.md, "Layout"). The routes find the
    app they serve in the request (`request.app`), so nothing of an app is kept in them; only
    `app.dependency_overrides` does not reach them (the service sets none)."""
    template = _fastapi()
    first = len(template.router.routes)
    for router in FEATURE_ROUTERS:
        template.include_router(router)
        if router.on_startup or router.on_shutdown:
            # They would be merged into the template's lifespan, not into the app's.
            raise RuntimeError(f"{router} has startup or shutdown handlers")
    return tuple(template.router.routes[first:])


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        body = error_body(
            code=exc.code, message=exc.message, request_id=_request_id(request), details=exc.details
        )
        return JSON(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            body = error_body(
                code="INVALID_JSON",
                message="Request body is not valid JSON",
                request_id=_request_id(request),
            )
            return JSON(body, status_code=400)
        fields = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query"))
                or "body",
                "message": _clean_message(str(e.get("msg", "invalid value"))),
                "type": e.get("type"),
            }
            for e in errors
        ]
        body = error_body(
            code="VALIDATION_ERROR",
            message="Invalid request: "
            + "; ".join(f"{f['field']}: {f['message']}" for f in fields),
            request_id=_request_id(request),
            details={"fields": fields},
        )
        return JSON(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {
            404: ("NOT_FOUND", "Not found"),
            405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
            400: ("VALIDATION_ERROR", "Malformed request"),
        }
        code, message = codes.get(exc.status_code, ("HTTP_ERROR", str(exc.detail)))
        body = error_body(code=code, message=message, request_id=_request_id(request))
        return JSON(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _clean_message(message: str) -> str:
    return message.removeprefix("Value error, ")


class HealthStatus(BaseModel):
    success: bool
    status: str


class ReadyStatus(HealthStatus):
    revision: str | None


def _install_operational_routes(app: FastAPI) -> None:
    @app.get(
        "/healthz",
        tags=["operations"],
        summary="The process is up",
        responses={200: {"model": HealthStatus, "description": "The process answers"}},
    )
    async def healthz() -> dict[str, Any]:
        return ok(status="ok")

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable and migrated",
        responses={
            200: {"model": ReadyStatus, "description": "Ready to serve"},
            503: {
                "model": ErrorEnvelope,
                "description": "Database unavailable (DATABASE_UNAVAILABLE) or migrations pending "
                "(MIGRATIONS_PENDING), see Retry-After",
            },
        },
    )
    async def readyz(request: Request) -> Response:
        database: Database = request.app.state.db
        try:
            current = await current_revision(database.writer)
        except Exception as exc:
            log.warning("readiness check failed: %s", type(exc).__name__)
            body = error_body(
                code="DATABASE_UNAVAILABLE",
                message="The database is unavailable",
                request_id=_request_id(request),
            )
            return JSON(body, status_code=503, headers={"Retry-After": "2"})
        head = head_revision()
        if current != head:
            body = error_body(
                code="MIGRATIONS_PENDING",
                message="Database migrations are not current",
                request_id=_request_id(request),
                details={"current": current, "head": head},
            )
            return JSON(body, status_code=503, headers={"Retry-After": "5"})
        return JSON(ok(status="ready", revision=current))

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        description="Readable from this host only, by default (`THERAPY_SCHEDULER_METRICS_ACCESS`: "
        "`loopback`, `token` or `open`).",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            403: {
                "model": ErrorEnvelope,
                "description": "This client may not read the metrics: not on this host, or "
                "without the metrics token (FORBIDDEN)",
            },
        },
    )
    async def metrics(request: Request) -> Response:
        access: MetricsAccess = request.app.state.metrics_access
        if not access.allows(client_address(request.scope), request.headers.get("authorization")):
            raise Forbidden("Metrics may not be read by this client")
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )


async def close_app(app: FastAPI) -> None:
    """Release what an app holds, once its background loops are stopped: the freed-slot matching
    still running, the audit entries still queued (written out), the caches, the database pools.
    The lifespan's shutdown; also for tests that serve an app without its lifespan."""
    database = app.state.db
    freed_slots.unregister(database)
    await freed_slots.drain()
    await app.state.audit_writer.close()
    await app.state.cache.close()
    await app.state.rate_counter.close()
    await database.dispose()
