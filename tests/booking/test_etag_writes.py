"""Every kind of write changes the ETag of every answer of its organization (docs/API.md,
"Conditional requests"): after the write, `If-None-Match` with the tag of an answer taken before it
gets the answer again (200, with another tag), never 304. Another organization's answers keep
their tags (304): the counter is per organization.

The writes are made the way users make them (the HTTP API), the purge, the import and the demo's
activity through their own entry points."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.booking.conftest import book, hold_body, hold_ok, monday
from tests.fixtures import A2, C1, C3, ORG_A, T1, T2, U_T2, Clinic, S
from therapy_scheduler.booking.purge import purge_once
from therapy_scheduler.demo.activity import add_activity
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow

WEEK = {"start_date": monday(1).isoformat(), "end_date": (monday(1) + timedelta(6)).isoformat()}
# (caller, path, query): answers of organization A, then of organization B.
ANSWERS_A = [
    (
        "scheduler",
        "/get-schedule-data-batch",
        {**WEEK, "therapist_ids": T1, "include_availability": "true", "include_conflicts": "true"},
    ),
    ("therapist", "/get-schedule-data-batch", {**WEEK, "include_availability": "true"}),
    ("admin", "/get-schedule-data-batch", {"start_date": "2027-03-08", "end_date": "2027-03-14"}),
    ("scheduler", "/get-sessions-optimized", {}),
    ("therapist", "/get-sessions-optimized", {"limit": "5"}),
    ("admin", "/get-dropdown-data", {}),
    ("therapist", "/get-dropdown-data", {"types": "clients"}),
]
ANSWERS_B = [
    ("admin_b", "/get-sessions-optimized", {}),
    ("admin_b", "/get-dropdown-data", {}),
    ("admin_b", "/get-schedule-data-batch", WEEK),
]

Context = tuple[httpx.AsyncClient, Clinic, Database]
Write = Callable[[Context, Any], Awaitable[None]]


async def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


async def _tags(client: httpx.AsyncClient, clinic: Clinic, answers: list[Any]) -> list[str]:
    tags = []
    for who, path, query in answers:
        r = await client.get(path, params=query, headers=clinic.headers(who))
        assert r.status_code == 200, (path, r.text)
        tags.append(r.headers["etag"])
    return tags


async def _statuses(
    client: httpx.AsyncClient, clinic: Clinic, answers: list[Any], tags: list[str]
) -> list[int]:
    out = []
    for (who, path, query), tag in zip(answers, tags, strict=True):
        headers = {**clinic.headers(who), "If-None-Match": tag}
        out.append((await client.get(path, params=query, headers=headers)).status_code)
    return out


# --- the writes: (prepare, write); `prepare` runs before the tags are taken -------------------


async def _nothing(ctx: Context) -> Any:
    return None


async def _a_hold(ctx: Context) -> Any:
    client, clinic, _ = ctx
    return await hold_ok(client, clinic, hold_body(monday(1), "10:00", "11:00"))


async def _a_session(ctx: Context) -> Any:
    client, clinic, _ = ctx
    return (await book(client, clinic, hold_body(monday(1), "10:00", "11:00")))["session"]["id"]


async def hold(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    await hold_ok(client, clinic, hold_body(monday(1), "13:00", "14:00"))


async def release(ctx: Context, held: Any) -> None:
    client, clinic, _ = ctx
    await _ok(
        await client.delete(
            f"/sessions/hold/{held['hold_key']}", headers=clinic.headers("scheduler")
        )
    )


async def confirm(ctx: Context, held: Any) -> None:
    client, clinic, _ = ctx
    occurrence = held["occurrences"][0]
    body = {
        "hold_key": held["hold_key"],
        "session": {"start_time": occurrence["start_time"], "end_time": occurrence["end_time"]},
    }
    await _ok(
        await client.post("/sessions/confirm", json=body, headers=clinic.headers("scheduler"))
    )


async def cancel(ctx: Context, session_id: Any) -> None:
    client, clinic, _ = ctx
    body = {"session_id": session_id, "reason": "client_illness"}
    await _ok(await client.post("/sessions/cancel", json=body, headers=clinic.headers("scheduler")))


async def lifecycle(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    # S[1] (2027-03-08, scheduled in the fixture's past week) is marked a no-show.
    await _ok(await client.post(f"/sessions/{S[1]}/no-show", headers=clinic.headers("admin")))


async def reschedule(ctx: Context, session_id: Any) -> None:
    client, clinic, _ = ctx
    body = {
        "time_zone": "America/New_York",
        "start_time": f"{(monday(1) + timedelta(1)).isoformat()}T10:00",
    }
    await _ok(
        await client.post(
            f"/sessions/{session_id}/reschedule", json=body, headers=clinic.headers("scheduler")
        )
    )


async def time_off(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    day = (monday(1) + timedelta(3)).isoformat()
    body = {"start": f"{day}T09:00", "end": f"{day}T10:00"}
    await _ok(
        await client.post(
            f"/admin/therapists/{T1}/time-off", json=body, headers=clinic.headers("admin")
        )
    )


async def availability(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    windows = [{"weekday": "monday", "start": "08:00", "end": "12:00"}]
    await _ok(
        await client.put(
            f"/admin/therapists/{T2}/availability",
            json={"windows": windows},
            headers=clinic.headers("admin"),
        )
    )


async def authorization(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    body = {"end_date": (monday(40)).isoformat()}
    await _ok(
        await client.patch(
            f"/admin/authorizations/{A2}", json=body, headers=clinic.headers("admin")
        )
    )


async def settings(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    await _ok(
        await client.patch(
            "/admin/organization/settings",
            json={"buffer_minutes": 5},
            headers=clinic.headers("admin"),
        )
    )


async def admin_change(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    await _ok(
        await client.patch(
            f"/admin/therapists/{T1}",
            json={"full_name": "Tara Quinn-Smith"},
            headers=clinic.headers("admin"),
        )
    )


async def user_change(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    await _ok(await client.post(f"/admin/users/{U_T2}/archive", headers=clinic.headers("admin")))


async def caseload(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    await _ok(
        await client.put(
            f"/admin/clients/{C3}/caseload",
            json={"therapist_ids": [T1, T2]},
            headers=clinic.headers("admin"),
        )
    )


async def import_(ctx: Context, _: Any) -> None:
    client, clinic, _db = ctx
    doc = {
        "clients": [{"id": str(uuid.uuid4()), "full_name": "Jules Import", "therapist_ids": [T1]}]
    }
    await _ok(await client.post("/admin/import", json=doc, headers=clinic.headers("admin")))


async def expiry_purge(ctx: Context, held: Any) -> None:
    _client, _clinic, db = ctx
    result = await purge_once(db, utcnow() + timedelta(hours=1))
    assert result.expired == 1


async def demo_activity(ctx: Context, _: Any) -> None:
    _client, _clinic, db = ctx
    await add_activity(db, organization_id=uuid.UUID(ORG_A), scheduler_email="nobody@alpha.example")


WRITES: dict[str, tuple[Callable[[Context], Awaitable[Any]], Write]] = {
    "hold": (_nothing, hold),
    "release": (_a_hold, release),
    "confirm": (_a_hold, confirm),
    "cancel": (_a_session, cancel),
    "lifecycle": (_nothing, lifecycle),
    "reschedule": (_a_session, reschedule),
    "time_off": (_nothing, time_off),
    "availability": (_nothing, availability),
    "authorization": (_nothing, authorization),
    "settings": (_nothing, settings),
    "admin_change": (_nothing, admin_change),
    "user_change": (_nothing, user_change),
    "caseload": (_nothing, caseload),
    "import": (_nothing, import_),
    "expiry_purge": (_a_hold, expiry_purge),
    "demo_activity": (_nothing, demo_activity),
}


@pytest.mark.parametrize("kind", list(WRITES))
async def test_every_write_changes_the_etags_of_its_organization(
    client: httpx.AsyncClient, booking: Clinic, db: Database, kind: str
) -> None:
    prepare, write = WRITES[kind]
    ctx = (client, booking, db)
    state = await prepare(ctx)
    before_a = await _tags(client, booking, ANSWERS_A)
    before_b = await _tags(client, booking, ANSWERS_B)
    # Nothing written yet: every tag still revalidates.
    assert await _statuses(client, booking, ANSWERS_A, before_a) == [304] * len(ANSWERS_A)

    await write(ctx, state)

    assert await _statuses(client, booking, ANSWERS_A, before_a) == [200] * len(ANSWERS_A)
    after_a = await _tags(client, booking, ANSWERS_A)
    assert all(a != b for a, b in zip(after_a, before_a, strict=True))
    # The other organization's answers did not change, nor did their tags.
    assert await _statuses(client, booking, ANSWERS_B, before_b) == [304] * len(ANSWERS_B)


async def test_a_failed_write_changes_no_etag(
    client: httpx.AsyncClient, booking: Clinic, db: Database
) -> None:
    before = await _tags(client, booking, ANSWERS_A)
    # A hold on T1's whole-day time off, refused: the transaction rolled back with its bump.
    refused = await client.post(
        "/sessions/hold",
        json=hold_body(monday(1) - timedelta(days=400), "10:00", "11:00", client=C1),
        headers=booking.headers("scheduler"),
    )
    assert refused.status_code >= 400
    assert await _statuses(client, booking, ANSWERS_A, before) == [304] * len(ANSWERS_A)
