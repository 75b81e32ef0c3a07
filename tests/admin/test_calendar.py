from __future__ import annotations

import httpx
import pytest

from tests.admin.helpers import audit_events, fields
from tests.conftest import count_rows
from tests.fixtures import T1, T2, TB, Clinic
from therapy_scheduler.infra.db import Database

WEEK = [
    {"weekday": "Monday", "start": "08:00", "end": "12:00"},
    {"weekday": "monday", "start": "12:00", "end": "15:30"},  # touching is not overlapping
    {"weekday": "saturday", "start": "10:00", "end": "11:00"},
]


async def test_put_replaces_every_window(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    r = await client.put(
        f"/admin/therapists/{T2}/availability",
        json={"windows": WEEK},
        headers=clinic.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "therapist_id": T2,
        "time_zone": "America/Chicago",
        "windows": [
            {"weekday": "monday", "start": "08:00", "end": "12:00"},
            {"weekday": "monday", "start": "12:00", "end": "15:30"},
            {"weekday": "saturday", "start": "10:00", "end": "11:00"},
        ],
    }
    assert await count_rows(db, "availability_windows") == 3 + 5 + 5  # T2's + T1's + TB's
    events = await audit_events(db)
    assert [(e["action"], e["entity_id"], e["details"]) for e in events] == [
        ("therapist.availability.replace", T2, {"windows": 3})
    ]
    # The schedule reads the new windows: Monday 2027-03-08 in Chicago, 08:00-15:30 local.
    batch = await client.get(
        f"/get-schedule-data-batch?start_date=2027-03-08&end_date=2027-03-08"
        f"&therapist_ids={T2}&include_availability=true",
        headers=clinic.headers("admin"),
    )
    windows = batch.json()["data"]["availability"][0]["windows"]
    assert windows == [{"start_time": "2027-03-08T14:00:00Z", "end_time": "2027-03-08T21:30:00Z"}]


async def test_empty_put_clears_availability(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.put(
        f"/admin/therapists/{T1}/availability",
        json={"windows": []},
        headers=clinic.headers("admin"),
    )
    assert r.json()["data"]["windows"] == []


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        ([{"weekday": "funday", "start": "09:00", "end": "10:00"}], "windows.0.weekday"),
        ([{"weekday": "monday", "start": "10:00", "end": "09:00"}], "windows.0"),
        ([{"weekday": "monday", "start": "25:00", "end": "09:00"}], "windows.0.start"),
        (
            [
                {"weekday": "monday", "start": "09:00", "end": "12:00"},
                {"weekday": "tuesday", "start": "09:00", "end": "12:00"},
                {"weekday": "monday", "start": "11:00", "end": "13:00"},
            ],
            "windows.2",
        ),
    ],
)
async def test_put_refuses_bad_windows(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, windows: object, field: str
) -> None:
    r = await client.put(
        f"/admin/therapists/{T1}/availability",
        json={"windows": windows},
        headers=clinic.headers("admin"),
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert fields(r.json()) == [field]
    assert await count_rows(db, "availability_windows") == 20


async def test_therapist_edits_only_their_own_calendar(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("therapist")  # T1
    own = await client.put(
        f"/admin/therapists/{T1}/availability", json={"windows": WEEK}, headers=h
    )
    assert own.status_code == 200
    for method, path, body in (
        ("GET", f"/admin/therapists/{T2}/availability", None),
        ("PUT", f"/admin/therapists/{T2}/availability", {"windows": WEEK}),
        ("GET", f"/admin/therapists/{T2}/time-off", None),
        (
            "POST",
            f"/admin/therapists/{T2}/time-off",
            {"start": "2027-04-01T09:00", "end": "2027-04-01T10:00"},
        ),
    ):
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "NOT_FOUND"


async def test_other_organizations_calendar_is_not_found(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    assert (await client.get(f"/admin/therapists/{TB}/availability", headers=h)).status_code == 404
    r = await client.put(f"/admin/therapists/{TB}/availability", json={"windows": []}, headers=h)
    assert r.status_code == 404
    assert (await client.get(f"/admin/therapists/{TB}/time-off", headers=h)).status_code == 404


async def test_time_off_lifecycle(client: httpx.AsyncClient, clinic: Clinic, db: Database) -> None:
    h = clinic.headers("therapist")
    url = f"/admin/therapists/{T1}/time-off"
    # 2027-03-14 is the spring-forward day in New York: 01:00 EST is 06:00Z, 05:00 EDT is 09:00Z.
    r = await client.post(
        url,
        json={"start": "2027-03-14T01:00", "end": "2027-03-14T05:00", "kind": "extra"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    entry = r.json()["data"]
    entry_id = entry.pop("id")
    assert entry == {
        "therapist_id": T1,
        "kind": "extra",
        "start": "2027-03-14T01:00",
        "end": "2027-03-14T05:00",
        "time_zone": "America/New_York",
        "start_time": "2027-03-14T06:00:00Z",
        "end_time": "2027-03-14T09:00:00Z",
    }
    listed = await client.get(url + "?start_date=2027-03-11", headers=h)
    assert [e["id"] for e in listed.json()["data"]] == [entry_id]
    everything = await client.get(url + "?limit=1", headers=h)
    assert [e["start"] for e in everything.json()["data"]] == ["2027-03-10T00:00"]
    cursor = everything.json()["pagination"]["next_cursor"]
    second = await client.get(url + f"?limit=1&cursor={cursor}", headers=h)
    assert [e["id"] for e in second.json()["data"]] == [entry_id]
    assert second.json()["pagination"] == {"limit": 1, "has_more": False, "next_cursor": None}
    only_extra = await client.get(url + "?kind=extra&end_date=2027-03-13", headers=h)
    assert only_extra.json()["data"] == []

    patched = await client.patch(
        f"{url}/{entry_id}", json={"end": "2027-03-14T07:30", "kind": "time_off"}, headers=h
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["data"]["kind"], patched.json()["data"]["end_time"]) == (
        "time_off",
        "2027-03-14T11:30:00Z",
    )
    deleted = await client.delete(f"{url}/{entry_id}", headers=h)
    assert deleted.json() == {"success": True, "id": entry_id, "deleted": True}
    gone = await client.delete(f"{url}/{entry_id}", headers=h)
    assert gone.status_code == 404
    assert [e["action"] for e in await audit_events(db)] == [
        "therapist.time_off.create",
        "therapist.time_off.update",
        "therapist.time_off.delete",
    ]


async def test_time_off_of_another_therapist_is_not_reachable_through_mine(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    h = clinic.headers("admin")
    r = await client.post(
        f"/admin/therapists/{T2}/time-off",
        json={"start": "2027-04-01T09:00", "end": "2027-04-01T10:00"},
        headers=h,
    )
    entry_id = r.json()["data"]["id"]
    wrong = await client.delete(f"/admin/therapists/{T1}/time-off/{entry_id}", headers=h)
    assert wrong.status_code == 404


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"start": "2027-03-14T02:30", "end": "2027-03-14T05:00"}, "NONEXISTENT_LOCAL_TIME", None),
        ({"start": "2027-04-01T09:00Z", "end": "2027-04-01T10:00Z"}, "VALIDATION_ERROR", "start"),
        ({"start": "2027-04-01T10:00", "end": "2027-04-01T09:00"}, "VALIDATION_ERROR", "end"),
        ({"start": "2027-04-01T10:00", "end": "2028-04-02T09:00"}, "VALIDATION_ERROR", "end"),
        (
            {"start": "2027-04-01T10:00", "end": "2027-04-01T11:00", "kind": "vacation"},
            "VALIDATION_ERROR",
            "kind",
        ),
        ({"start": "tomorrow", "end": "2027-04-01T11:00"}, "VALIDATION_ERROR", "start"),
    ],
)
async def test_time_off_bad_input(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    body: dict[str, str],
    code: str,
    field: str | None,
) -> None:
    r = await client.post(
        f"/admin/therapists/{T1}/time-off", json=body, headers=clinic.headers("admin")
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code
    if field:
        assert fields(r.json()) == [field]
    assert await count_rows(db, "time_off") == 1
