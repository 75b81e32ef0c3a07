"""GET /admin/webhooks/{id}/deliveries a page at a time (docs/WEBHOOKS.md): keyset cursors over the
event order, stable while new events arrive, with the status filter; bad cursors and limits are
400s naming the parameter."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fixtures import ORG_A, Clinic
from tests.support import assert_error
from tests.webhooks.conftest import Receiver, drain, register
from therapy_scheduler.config import Settings
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.cursor import encode_cursor


async def _emit(db: Database, count: int) -> list[str]:
    """`count` session.updated events, each about its own session; their ids, oldest first."""
    ids = []
    async with db.write() as conn:
        for _ in range(count):
            event_id = await outbox.emit_session_event(
                conn,
                organization_id=uuid.UUID(ORG_A),
                event_type="session.updated",
                session_id=uuid.uuid4(),
                therapist_id=uuid.uuid4(),
                client_id=uuid.uuid4(),
            )
            ids.append(str(event_id))
    return ids


async def _pages(
    client: httpx.AsyncClient, clinic: Clinic, endpoint_id: str, query: str
) -> list[dict[str, Any]]:
    """Every page of the list, following next_cursor."""
    pages = []
    cursor = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        r = await client.get(
            f"/admin/webhooks/{endpoint_id}/deliveries?{query}{suffix}",
            headers=clinic.headers("admin"),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        cursor = body["pagination"]["next_cursor"]
        assert body["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            return pages


async def test_pages_walk_every_delivery_newest_first_once(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    endpoint = await register(client, clinic, receiver.url, ["session.updated"])
    emitted = await _emit(db, 7)
    receiver.plan = [500, 500]  # two deliveries wait for a retry: status=pending
    await drain(db, settings, sender)

    pages = await _pages(client, clinic, endpoint["id"], "limit=3")
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert [p["pagination"]["limit"] for p in pages] == [3, 3, 3]
    walked = [d["event_id"] for p in pages for d in p["data"]]
    assert walked == list(reversed(emitted))  # newest event first, each once
    # The whole list in one page is the same list.
    whole = await _pages(client, clinic, endpoint["id"], "limit=100")
    assert [d["event_id"] for d in whole[0]["data"]] == walked
    assert whole[0]["pagination"] == {"limit": 100, "has_more": False, "next_cursor": None}

    # The status filter pages through its own rows.
    pending = await _pages(client, clinic, endpoint["id"], "status=pending&limit=1")
    assert [len(p["data"]) for p in pending] == [1, 1]
    assert {d["status"] for p in pending for d in p["data"]} == {"pending"}
    assert len({d["id"] for p in pending for d in p["data"]}) == 2


async def test_new_events_between_pages_neither_repeat_nor_skip_rows(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    endpoint = await register(client, clinic, receiver.url, ["session.updated"])
    emitted = await _emit(db, 4)
    await drain(db, settings, sender)
    url = f"/admin/webhooks/{endpoint['id']}/deliveries?limit=2"
    first = (await client.get(url, headers=clinic.headers("admin"))).json()
    await _emit(db, 3)  # newer events arrive while the admin reads
    await drain(db, settings, sender)
    cursor = first["pagination"]["next_cursor"]
    second = (await client.get(f"{url}&cursor={cursor}", headers=clinic.headers("admin"))).json()
    seen = [d["event_id"] for d in first["data"] + second["data"]]
    assert seen == list(reversed(emitted))
    assert second["pagination"]["next_cursor"] is None


async def test_bad_cursor_or_limit_is_a_400(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    first = await register(client, clinic, receiver.url, ["session.updated"])
    other = await register(client, clinic, receiver.url + "/other", ["session.updated"])
    await _emit(db, 3)
    await drain(db, settings, sender)
    admin = clinic.headers("admin")
    r = await client.get(f"/admin/webhooks/{first['id']}/deliveries?limit=1", headers=admin)
    cursor = r.json()["pagination"]["next_cursor"]
    assert cursor is not None
    before = (await client.get(f"/admin/webhooks/{first['id']}/deliveries", headers=admin)).json()

    # Another endpoint's cursor, another list's cursor, and text that is no cursor at all.
    for bad in (
        cursor,
        encode_cursor("waitlist", 10, uuid.uuid4()),
        "not-a-cursor",
        encode_cursor("webhook_deliveries", uuid.UUID(other["id"])),
    ):
        target = other["id"] if bad == cursor else first["id"]
        r = await client.get(
            f"/admin/webhooks/{target}/deliveries", params={"cursor": bad}, headers=admin
        )
        assert_error(r, 400, "INVALID_CURSOR")
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("cursor=", "cursor")):
        r = await client.get(f"/admin/webhooks/{first['id']}/deliveries?{query}", headers=admin)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert [f["field"] for f in body["details"]["fields"]] == [field], body
    r = await client.get(
        f"/admin/webhooks/{first['id']}/deliveries", params={"cursor": "x" * 257}, headers=admin
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    # Reading with bad parameters changed nothing.
    after = (await client.get(f"/admin/webhooks/{first['id']}/deliveries", headers=admin)).json()
    assert after["data"] == before["data"]
