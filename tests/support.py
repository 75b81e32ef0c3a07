"""Helpers shared by the HTTP tests: seeding more records through the real import path, and
comparing error bodies (server processes: tests/api_processes.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fixtures import ORG_A
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


async def import_more(db: Database, doc: dict[str, Any]) -> dict[str, int]:
    """Load more records into the clinic (one transaction), as `therapy-scheduler import` would."""
    parsed = parse_document(doc)
    async with db.write() as conn:
        return await import_document(conn, parsed)


def session(
    sid: str,
    therapist: str,
    client: str,
    start: str,
    end: str,
    status: str = "scheduled",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": sid,
        "therapist_id": therapist,
        "client_id": client,
        "start_time": start,
        "end_time": end,
        "status": status,
        **extra,
    }


def therapist(tid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "organization_id": ORG_A,
        "full_name": name,
        "time_zone": "America/New_York",
        **extra,
    }


def client_record(cid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "organization_id": ORG_A, "full_name": name, **extra}


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return {k: v for k, v in body.items() if k != "request_id"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "error", "code", "request_id", "details"}
    assert body["success"] is False
    assert body["code"] == code, body
    assert body["error"]
    return body


def session_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["data"]["sessions"]]
