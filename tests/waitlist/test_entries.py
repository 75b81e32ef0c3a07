"""Waitlist entries over HTTP (docs/WAITLIST.md) on SQLite and PostgreSQL: create, list with cursor
paging, show, change, remove; roles; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.booking.conftest import monday, table_count
from tests.fixtures import C1, C3, C4, CB, T1, T2, Clinic
from tests.waitlist.conftest import add_entry, entry_body
from therapy_scheduler.infra.db import Database


async def test_create_show_change_remove(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    created = await add_entry(client, waiting)
    assert created == {
        "id": created["id"],
        "client_id": C1,
        "service_code": "97153",
        "duration_minutes": 60,
        "therapist_ids": [T1],
        "windows": [{"weekday": 0, "start": "12:00", "end": "17:00"}],
        "time_zone": "America/New_York",
        "earliest_date": monday(0).isoformat(),
        "latest_date": None,
        "location_type": None,
        "priority": 10,
        "note": "Prefers afternoons",
        "status": "waiting",
        "open_offer_id": None,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    url = f"/waitlist/{created['id']}"
    shown = await client.get(url, headers=waiting.headers("admin"))
    assert shown.status_code == 200
    assert shown.json()["data"] == created

    patched = await client.patch(
        url, json={"priority": 50, "therapist_ids": [T1, T2]}, headers=waiting.headers("scheduler")
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["priority"] == 50
    assert patched.json()["data"]["therapist_ids"] == [T1, T2]

    removed = await client.delete(url, headers=waiting.headers("scheduler"))
    assert removed.json() == {"success": True, "id": created["id"], "deleted": True}
    assert (await client.get(url, headers=waiting.headers("admin"))).status_code == 404
    assert await table_count(db, "audit_events", "action LIKE 'waitlist.entry.%'") == 3


async def test_therapists_see_no_waitlist(client: httpx.AsyncClient, waiting: Clinic) -> None:
    created = await add_entry(client, waiting)
    for method, url, body in (
        ("GET", "/waitlist", None),
        ("POST", "/waitlist", entry_body()),
        ("GET", f"/waitlist/{created['id']}", None),
        ("DELETE", f"/waitlist/{created['id']}", None),
        ("GET", "/waitlist/offers", None),
    ):
        r = await client.request(method, url, json=body, headers=waiting.headers("therapist"))
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["code"] == "FORBIDDEN"


async def test_list_in_offer_order_with_cursor(client: httpx.AsyncClient, waiting: Clinic) -> None:
    low = await add_entry(client, waiting, priority=1)
    high = await add_entry(client, waiting, client_id=C3, priority=90)
    middle = await add_entry(client, waiting, priority=10)
    headers = waiting.headers("scheduler")
    first = (await client.get("/waitlist?limit=2", headers=headers)).json()
    assert [e["id"] for e in first["data"]] == [high["id"], middle["id"]]
    assert first["waiting"] == 3
    second = (
        await client.get(f"/waitlist?limit=2&cursor={first['next_cursor']}", headers=headers)
    ).json()
    assert [e["id"] for e in second["data"]] == [low["id"]]
    assert second["next_cursor"] is None
    only_c3 = (await client.get(f"/waitlist?client_id={C3}", headers=headers)).json()
    assert [e["id"] for e in only_c3["data"]] == [high["id"]]
    bad = await client.get("/waitlist?cursor=nonsense", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_CURSOR"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service_code": "99999"}, "service_code"),
        ({"duration_minutes": 5}, "duration_minutes"),
        ({"windows": []}, "windows"),
        ({"windows": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "weekday"),
        ({"windows": [{"weekday": 1, "start": "11:00", "end": "10:00"}]}, "windows"),
        ({"windows": [{"weekday": 1, "start": "9am", "end": "10:00"}]}, "start"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"earliest_date": "2027-02-30"}, "earliest_date"),
        ({"latest_date": "2020-01-01"}, "latest_date"),
        ({"priority": 101}, "priority"),
        ({"location_type": "moon"}, "location_type"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, waiting: Clinic, db: Database, change: dict[str, Any], field: str
) -> None:
    r = await client.post(
        "/waitlist", json=entry_body(**change), headers=waiting.headers("scheduler")
    )
    assert r.status_code == 400, r.text
    assert field in r.text
    assert await table_count(db, "waitlist_entries") == 0


async def test_unknown_inactive_or_foreign_client_is_404(
    client: httpx.AsyncClient, waiting: Clinic, db: Database
) -> None:
    for client_id in (C4, CB):
        r = await client.post(
            "/waitlist", json=entry_body(client=client_id), headers=waiting.headers("scheduler")
        )
        assert r.status_code == 404, r.text
        assert r.json()["details"]["field"] == "client_id"
    assert await table_count(db, "waitlist_entries") == 0


async def test_patch_bad_input_changes_nothing(client: httpx.AsyncClient, waiting: Clinic) -> None:
    created = await add_entry(client, waiting)
    url = f"/waitlist/{created['id']}"
    for body, field in (
        ({"latest_date": "2020-01-01"}, "latest_date"),
        ({"priority": None}, "priority"),
        ({"duration_minutes": 1000}, "duration_minutes"),
    ):
        r = await client.patch(url, json=body, headers=waiting.headers("scheduler"))
        assert r.status_code == 400, r.text
        assert field in r.text
    shown = await client.get(url, headers=waiting.headers("scheduler"))
    assert shown.json()["data"] == created


async def test_offer_and_match_ranges_need_an_offset(
    client: httpx.AsyncClient, waiting: Clinic
) -> None:
    headers = waiting.headers("scheduler")
    r = await client.get(
        "/waitlist/offers", params={"start": "2027-03-01T00:00:00"}, headers=headers
    )
    assert r.status_code == 400, r.text
    assert "start" in r.text
    r = await client.get(
        "/waitlist/matches",
        params={
            "start": "9999-12-31T23:00:00+14:00",
            "end": "2027-03-01T01:00:00Z",
            "therapist_id": T1,
        },
        headers=headers,
    )
    assert r.status_code == 400, r.text
    assert "start" in r.text


async def test_therapist_filter_pages_through_every_entry(
    client: httpx.AsyncClient, waiting: Clinic
) -> None:
    named_t2 = await add_entry(client, waiting, therapist_ids=[T2], priority=90)
    anyone = await add_entry(client, waiting, therapist_ids=None, priority=50)
    named_t1 = await add_entry(client, waiting, priority=10)
    headers = waiting.headers("scheduler")
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, str | int] = {"limit": 1, "therapist_id": T1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/waitlist", params=params, headers=headers)).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [anyone["id"], named_t1["id"]]
    assert named_t2["id"] not in seen
