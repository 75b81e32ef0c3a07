"""Reads on a real streaming replica whose replay is paused (`pg_wal_replay_pause()`), so that it
really lags: the caller's identity and scope are never older than the primary, and a writer reads
their own writes, while other readers keep reading the (stale) replica (docs/DEPLOYMENT.md, "Read
replicas")."""

from __future__ import annotations

from typing import Any

import httpx

from tests.booking.conftest import book, hold_body, monday
from tests.fixtures import C3, T1, U_ADMIN, U_SCHED, Clinic, S
from tests.scaleout.conftest import Stack, pause_replay, sql

SESSIONS = "/get-sessions-optimized"
WEEK = "/get-schedule-data-batch"
A_WEEK = {"start_date": "2027-03-08", "end_date": "2027-03-14", "include_availability": "true"}


async def session_ids(client: httpx.AsyncClient, clinic: Clinic, who: str) -> dict[str, str]:
    """id → status of the sessions `who` sees on the first page (the fixture has fewer than 50)."""
    r = await client.get(SESSIONS, headers=clinic.headers(who), params={"limit": 100})
    assert r.status_code == 200, r.text
    return {s["id"]: s["status"] for s in r.json()["data"]["sessions"]}


async def on_replica(stack: Stack, statement: str, *args: Any) -> Any:
    return await sql(stack.servers.replica_url, statement, *args)


async def on_primary(stack: Stack, statement: str, *args: Any) -> Any:
    return await sql(stack.servers.primary_url, statement, *args)


async def test_a_user_deactivated_on_the_primary_is_refused_while_the_replica_lags(
    stack: Stack,
) -> None:
    client, clinic = stack.client, stack.clinic
    assert (await client.get(SESSIONS, headers=clinic.headers("scheduler"))).status_code == 200
    assert (
        await client.get(WEEK, params=A_WEEK, headers=clinic.headers("scheduler"))
    ).status_code == 200
    await pause_replay(stack.servers)
    await on_primary(stack, "UPDATE users SET is_active = false WHERE id = $1", U_SCHED)
    # The lag is real: the replica still has the user active.
    assert await on_replica(stack, "SELECT is_active FROM users WHERE id = $1", U_SCHED) is True

    page = await client.get(SESSIONS, headers=clinic.headers("scheduler"))
    week = await client.get(WEEK, params=A_WEEK, headers=clinic.headers("scheduler"))
    dropdown = await client.get("/get-dropdown-data", headers=clinic.headers("scheduler"))
    hold = await client.post(
        "/sessions/hold", json=hold_body(monday(1)), headers=clinic.headers("scheduler")
    )
    statuses = (page.status_code, week.status_code, dropdown.status_code, hold.status_code)
    assert statuses == (401, 401, 401, 401)


async def test_a_role_change_on_the_primary_applies_while_the_replica_lags(stack: Stack) -> None:
    client, clinic = stack.client, stack.clinic
    audit = await client.get("/admin/audit-events", headers=clinic.headers("admin"))
    assert audit.status_code == 200, audit.text
    await pause_replay(stack.servers)
    await on_primary(stack, "UPDATE users SET role = 'scheduler' WHERE id = $1", U_ADMIN)
    assert await on_replica(stack, "SELECT role FROM users WHERE id = $1", U_ADMIN) == "admin"

    audit = await client.get("/admin/audit-events", headers=clinic.headers("admin"))
    assert audit.status_code == 403, audit.text


async def test_a_removed_caseload_applies_while_the_replica_lags(stack: Stack) -> None:
    client, clinic = stack.client, stack.clinic
    # T1's caseload has C3, whose session S8 is with T2: T1 sees it only through the caseload.
    assert S[8] in await session_ids(client, clinic, "therapist")
    await pause_replay(stack.servers)
    await on_primary(
        stack, "DELETE FROM caseloads WHERE therapist_id = $1 AND client_id = $2", T1, C3
    )
    assert await on_replica(stack, "SELECT count(*) FROM caseloads WHERE client_id = $1", C3) == 2

    assert S[8] not in await session_ids(client, clinic, "therapist")
    clients = await client.get("/get-dropdown-data", headers=clinic.headers("therapist"))
    assert clients.status_code == 200, clients.text
    assert C3 not in {c["id"] for c in clients.json()["data"]["clients"]}


async def test_a_scheduler_reads_their_own_cancel_while_others_read_the_replica(
    stack: Stack,
) -> None:
    client, clinic = stack.client, stack.clinic
    assert (await session_ids(client, clinic, "admin"))[S[7]] == "scheduled"
    await pause_replay(stack.servers)
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": S[7], "reason": "client_illness"},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text

    assert (await session_ids(client, clinic, "scheduler"))[S[7]] == "cancelled"
    # Another reader still reads the replica, which has not replayed the cancel yet.
    assert (await session_ids(client, clinic, "admin"))[S[7]] == "scheduled"


async def test_a_scheduler_reads_their_own_booking_while_the_replica_lags(stack: Stack) -> None:
    client, clinic = stack.client, stack.clinic
    await pause_replay(stack.servers)
    confirmed = await book(client, clinic, hold_body(monday(1)))
    session_id = str(confirmed["session"]["id"])

    assert session_id in await session_ids(client, clinic, "scheduler")
    assert session_id not in await session_ids(client, clinic, "admin")


async def test_an_admin_reads_their_own_change_while_others_read_the_replica(
    stack: Stack,
) -> None:
    client, clinic = stack.client, stack.clinic
    await pause_replay(stack.servers)
    r = await client.patch(
        f"/admin/therapists/{T1}",
        json={"full_name": "Tara Q. Quinn"},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 200, r.text

    async def name_seen_by(who: str) -> str:
        shown = await client.get(f"/admin/therapists/{T1}", headers=clinic.headers(who))
        assert shown.status_code == 200, shown.text
        return str(shown.json()["data"]["full_name"])

    assert await name_seen_by("admin") == "Tara Q. Quinn"
    assert await name_seen_by("scheduler") == "Tara Quinn"
