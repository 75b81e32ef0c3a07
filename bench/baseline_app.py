"""The baseline of the read scenarios: a minimal Starlette + asyncpg app answering the same requests
with one SQL statement each whose JSON is built by PostgreSQL (see bench/sql.py).

No authentication, no validation beyond parsing, no middleware: the ceiling of an API in front of
this database. Run with uvicorn like the service:
    BENCH_DATABASE_URL=postgresql://… uvicorn bench.baseline_app:app --workers 2
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.sql import dropdown_sql, schedule_week_sql, sessions_page_sql
from therapy_scheduler.domain.vocab import (
    CANCELLATION_REASONS,
    LOCATION_TYPES,
    SERVICE_CODES,
    SESSION_STATUSES,
)
from therapy_scheduler.kit.cursor import decode_cursor
from therapy_scheduler.kit.time import day_bounds, zone

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "10"))
VOCABULARIES = orjson.dumps(
    {
        "location_types": [{"value": k, "label": v} for k, v in LOCATION_TYPES.items()],
        "service_codes": [
            {"code": s.code, "label": s.label, "unit_minutes": s.unit_minutes}
            for s in SERVICE_CODES.values()
        ],
        "session_statuses": [{"value": k, "label": v} for k, v in SESSION_STATUSES.items()],
        "cancellation_reasons": [
            {"code": r.code, "label": r.label, "attributed_to": r.attributed_to}
            for r in CANCELLATION_REASONS.values()
        ],
    }
).decode()
SESSIONS_BY_DATE = sessions_page_sql(dates=True, cursor=False)
SESSIONS_ALL = sessions_page_sql(dates=False, cursor=False)
SESSIONS_AFTER = sessions_page_sql(dates=False, cursor=True)
SCHEDULE = schedule_week_sql()
DROPDOWN = dropdown_sql()


class Database:
    pool: asyncpg.Pool
    organization_id: uuid.UUID
    time_zone: str


db = Database()


def _json(text: str) -> Response:
    return Response(text, media_type="application/json")


async def sessions(request: Request) -> Response:
    q = request.query_params
    tz = zone(q.get("time_zone") or db.time_zone)
    limit = int(q.get("limit", 50))
    page = int(q.get("page", 1))
    start = end = None
    if q.get("start_date") and q.get("end_date"):
        start, end = day_bounds(
            date.fromisoformat(q["start_date"]), date.fromisoformat(q["end_date"]), tz
        )
    therapist = uuid.UUID(q["therapist_id"])
    now = datetime.now(UTC)
    args: list[Any] = [db.organization_id, therapist, start, end, limit]
    if q.get("cursor"):
        sql, args = (
            SESSIONS_AFTER,
            [*args, 0, now, *decode_cursor("sessions", q["cursor"], (datetime, uuid.UUID))],
        )
    else:
        sql = SESSIONS_BY_DATE if start else SESSIONS_ALL
        args = [*args, (page - 1) * limit, now]
    async with db.pool.acquire() as conn:
        return _json(await conn.fetchval(sql, *args))


async def schedule(request: Request) -> Response:
    q = request.query_params
    tz = zone(q.get("time_zone") or db.time_zone)
    start, end = day_bounds(
        date.fromisoformat(q["start_date"]), date.fromisoformat(q["end_date"]), tz
    )
    ids = [uuid.UUID(i) for i in q.get("therapist_ids", "").split(",") if i]
    args = [
        db.organization_id,
        ids,
        start,
        end,
        int(q.get("batch_size", 100)),
        int(q.get("offset", 0)),
        datetime.now(UTC),
    ]
    async with db.pool.acquire() as conn:
        return _json(await conn.fetchval(SCHEDULE, *args))


async def dropdown(request: Request) -> Response:
    async with db.pool.acquire() as conn:
        return _json(await conn.fetchval(DROPDOWN, db.organization_id, VOCABULARIES))


async def healthz(_request: Request) -> Response:
    return _json('{"success": true, "status": "ok"}')


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    url = os.environ["BENCH_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    db.pool = await asyncpg.create_pool(
        url, min_size=POOL_SIZE, max_size=POOL_SIZE, server_settings={"timezone": "UTC"}
    )
    row = await db.pool.fetchrow("SELECT id, time_zone FROM organizations ORDER BY name LIMIT 1")
    db.organization_id, db.time_zone = row["id"], row["time_zone"]
    yield
    await db.pool.close()


app = Starlette(
    routes=[
        Route("/get-sessions-optimized", sessions),
        Route("/get-schedule-data-batch", schedule),
        Route("/get-dropdown-data", dropdown),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
