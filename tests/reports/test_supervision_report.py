"""GET /reports/supervision (docs/API.md "Supervision report") on SQLite and PostgreSQL, against a
hand-computed month: May 2027 in New York (UTC-4).

RBT T2 "Theo Ramos":
  C1 97153 completed May 3 10:00-13:00 (3 h), BCBA T1's 97155 completed 10:30-11:30 inside (1 h)
  C2 97153 completed May 10 09:00-11:00 (2 h), BCBA T5's 97155 completed 09:00-09:30 inside (0.5 h)
  C3 97153 scheduled May 12 (not delivered) with a scheduled 97155: not counted
  C2 97153 cancelled May 14: not counted
  C1 97153 completed May 31 23:00 - June 1 01:00 (2 h): starts in May, counts in May, whole; its
     97155 of June 1 00:00-00:30 (0.5 h) counts with it
  C1 97153 completed April 30 23:00 - May 1 01:00: starts in April, not counted (nor its 97155)
  → 7 h direct, 2 h supervised, 28.6 %, 3 contacts, meets the minimum (5 %, 2 contacts)
RBT T7 "=Eve Formula": C3 97153 completed May 5 09:00-17:00 (8 h), T5's 97155 09:00-09:15 (0.25 h)
  → 3.1 %, 1 contact, does not meet it
RBT T8 "Nia Idle": active, nothing delivered → no percentage, nothing to meet
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.fixtures import C1, C2, C3, ORG_A, T1, T2, Clinic
from tests.support import assert_error, import_more, therapist
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Session
from therapy_scheduler.reports.service import as_csv

T5 = str(uuid.UUID(int=0xA205))
T7 = str(uuid.UUID(int=0xA207))
T8 = str(uuid.UUID(int=0xA208))
URL = "/reports/supervision"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text + "-04:00")


# (therapist, client, service, start, end, status, supervises)
MONTH = [
    (T2, C1, "97153", "2027-05-03T10:00", "2027-05-03T13:00", "completed", None),
    (T1, C1, "97155", "2027-05-03T10:30", "2027-05-03T11:30", "completed", "97153"),
    (T2, C2, "97153", "2027-05-10T09:00", "2027-05-10T11:00", "completed", None),
    (T5, C2, "97155", "2027-05-10T09:00", "2027-05-10T09:30", "completed", "97153"),
    (T2, C3, "97153", "2027-05-12T09:00", "2027-05-12T11:00", "scheduled", None),
    (T1, C3, "97155", "2027-05-12T09:30", "2027-05-12T10:00", "scheduled", "97153"),
    (T2, C2, "97153", "2027-05-14T09:00", "2027-05-14T11:00", "cancelled", None),
    (T2, C1, "97153", "2027-05-31T23:00", "2027-06-01T01:00", "completed", None),
    (T1, C1, "97155", "2027-06-01T00:00", "2027-06-01T00:30", "completed", "97153"),
    (T2, C1, "97153", "2027-04-30T23:00", "2027-05-01T01:00", "completed", None),
    (T1, C1, "97155", "2027-05-01T00:00", "2027-05-01T00:30", "completed", "97153"),
    (T7, C3, "97153", "2027-05-05T09:00", "2027-05-05T17:00", "completed", None),
    (T5, C3, "97155", "2027-05-05T09:00", "2027-05-05T09:15", "completed", "97153"),
]

ROWS = [
    {
        "therapist_id": T7,
        "therapist_name": "=Eve Formula",
        "credential": "RBT",
        "direct_hours": 8.0,
        "supervised_hours": 0.25,
        "supervision_percent": 3.1,
        "supervision_contacts": 1,
        "meets_minimum": False,
    },
    {
        "therapist_id": T8,
        "therapist_name": "Nia Idle",
        "credential": "RBT",
        "direct_hours": 0.0,
        "supervised_hours": 0.0,
        "supervision_percent": None,
        "supervision_contacts": 0,
        "meets_minimum": None,
    },
    {
        "therapist_id": T2,
        "therapist_name": "Theo Ramos",
        "credential": "RBT",
        "direct_hours": 7.0,
        "supervised_hours": 2.0,
        "supervision_percent": 28.6,
        "supervision_contacts": 3,
        "meets_minimum": True,
    },
]


@pytest.fixture
async def month(db: Database, clinic: Clinic) -> Clinic:
    await import_more(
        db,
        {
            "therapists": [
                therapist(T5, "Bo Second", credential="BCBA"),
                therapist(T7, "=Eve Formula", credential="RBT"),
                therapist(T8, "Nia Idle", credential="RBT"),
            ]
        },
    )
    # Written directly: the import path takes no supervision overlaps (docs/IMPORT.md).
    async with db.write() as conn:
        for who, client, code, start, end, status, supervises in MONTH:
            await conn.execute(
                insert(Session).values(
                    id=uuid.uuid4(),
                    organization_id=uuid.UUID(ORG_A),
                    therapist_id=uuid.UUID(who),
                    client_id=uuid.UUID(client),
                    service_code=code,
                    start_time=_at(start),
                    end_time=_at(end),
                    status=status,
                    units=0,
                    consumes_units=False,
                    supervises=supervises,
                )
            )
    return clinic


async def _report(
    client: httpx.AsyncClient, clinic: Clinic, who: str = "scheduler", **params: Any
) -> httpx.Response:
    return await client.get(URL, params={"month": "2027-05", **params}, headers=clinic.headers(who))


async def test_figures_match_the_hand_computed_month(
    client: httpx.AsyncClient, month: Clinic
) -> None:
    r = await _report(client, month)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"] == {
        "month": "2027-05",
        "time_zone": "America/New_York",
        "start_time": "2027-05-01T04:00:00Z",
        "end_time": "2027-06-01T04:00:00Z",
        "minimum": {"percent": 5.0, "contacts": 2},
        "rows": ROWS,
    }
    admin = await _report(client, month, "admin", therapist_id=T2)
    assert admin.json()["data"]["rows"] == [ROWS[2]]


async def test_the_minimum_comes_from_the_settings(
    client: httpx.AsyncClient, month: Clinic
) -> None:
    r = await client.patch(
        "/admin/organization/settings",
        json={"supervision_min_percent": 3, "supervision_min_contacts": 1},
        headers=month.headers("admin"),
    )
    assert r.status_code == 200, r.text
    rows = (await _report(client, month)).json()["data"]["rows"]
    assert [(r["therapist_id"], r["meets_minimum"]) for r in rows] == [
        (T7, True),
        (T8, None),
        (T2, True),
    ]


async def test_a_therapist_sees_only_their_own_row(
    client: httpx.AsyncClient, month: Clinic
) -> None:
    r = await _report(client, month, "therapist2")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["rows"] == [ROWS[2]]
    assert_error(await _report(client, month, "therapist2", therapist_id=T7), 403, "FORBIDDEN")
    # A BCBA has no RBT row.
    assert (await _report(client, month, "therapist")).json()["data"]["rows"] == []


async def test_csv_escapes_formulas(client: httpx.AsyncClient, month: Clinic) -> None:
    r = await client.get(
        URL,
        params={"month": "2027-05"},
        headers={**month.headers("scheduler"), "Accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="supervision-2027-05.csv"'
    assert list(csv.reader(io.StringIO(r.text))) == [
        [
            "month",
            "therapist_id",
            "therapist_name",
            "credential",
            "direct_hours",
            "supervised_hours",
            "supervision_percent",
            "supervision_contacts",
            "meets_minimum",
        ],
        ["2027-05", T7, "'=Eve Formula", "RBT", "8.0", "0.25", "3.1", "1", "false"],
        ["2027-05", T8, "Nia Idle", "RBT", "0.0", "0.0", "", "0", ""],
        ["2027-05", T2, "Theo Ramos", "RBT", "7.0", "2.0", "28.6", "3", "true"],
    ]


@pytest.mark.parametrize("name", ["+x", "-x", "@x"])
async def test_every_formula_start_is_escaped(
    client: httpx.AsyncClient, month: Clinic, db: Database, name: str
) -> None:
    await import_more(db, {"therapists": [therapist(T8, name, credential="RBT")]})
    r = await client.get(
        URL,
        params={"month": "2027-05", "therapist_id": T8},
        headers={**month.headers("scheduler"), "Accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert list(csv.reader(io.StringIO(r.text)))[1][2] == "'" + name


async def test_the_read_is_audited(client: httpx.AsyncClient, month: Clinic) -> None:
    assert (await _report(client, month)).status_code == 200
    audit = await client.get(
        "/admin/audit-events",
        params={"entity_type": "report", "action": "phi.read"},
        headers=month.headers("admin"),
    )
    [read] = audit.json()["data"]["events"]
    assert read["entity_id"] == "supervision"
    assert read["client_ids"] == sorted([C1, C2, C3])
    assert read["details"] == {
        "endpoint": "GET /reports/supervision",
        "session_count": 8,
        "client_count": 3,
    }


@pytest.mark.parametrize("value", ["2027-13", "2027-5", "May 2027", "2027-05-01", "1999-12", ""])
async def test_a_malformed_month_is_refused(
    client: httpx.AsyncClient, month: Clinic, value: str
) -> None:
    r = await client.get(URL, params={"month": value}, headers=month.headers("scheduler"))
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert [f["field"] for f in body["details"]["fields"]] == ["month"]


async def test_month_is_required_and_therapist_must_exist(
    client: httpx.AsyncClient, month: Clinic
) -> None:
    r = await client.get(URL, headers=month.headers("scheduler"))
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert [f["field"] for f in body["details"]["fields"]] == ["month"]
    r = await _report(client, month, therapist_id=str(uuid.UUID(int=0xDEAD)))
    assert assert_error(r, 404, "NOT_FOUND")["details"] == {"field": "therapist_id"}
    assert (await client.get(URL, params={"month": "2027-05"})).status_code == 401


@pytest.mark.parametrize("name", ["\tx", "\rx", "=x", "plain"])
def test_tab_and_carriage_return_starts_are_escaped(name: str) -> None:
    """Names with leading white space cannot be stored (they are trimmed); the CSV writer escapes
    them anyway."""
    row = {**ROWS[0], "therapist_name": name}
    text = as_csv({"data": {"month": "2027-05", "rows": [row]}})
    cell = list(csv.reader(io.StringIO(text)))[1][2]
    assert cell == (name if name == "plain" else "'" + name)
