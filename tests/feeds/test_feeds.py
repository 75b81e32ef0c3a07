"""Calendar feeds: token creation and role checks, revocation, PHI-minimised ICS, time zones and a
DST-crossing weekly series rendered as one VEVENT with RRULE."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar
from sqlalchemy import event, insert, text

from tests.fixtures import ORG_A, T1, T2, TB, U_ADMIN, Clinic
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import Hold

ZONE_NAME = "America/Chicago"
ZONE = ZoneInfo(ZONE_NAME)
T5, C5, C6, U_T5 = (str(uuid.UUID(int=n)) for n in (0xA205, 0xA305, 0xA306, 0xA506))
SERIES, PLAIN_SERIES = str(uuid.UUID(int=0xA701)), str(uuid.UUID(int=0xA702))
NAMES = ("Riley", "Jordan", "Parkinson", "Samwise", "Leeroy", "Nora", "Northcott")
SECRETS = ("parkinson.family@example.com", "+1-555-0999", "Sensitive note about behaviour")


@dataclass
class Schedule:
    """The sessions imported for therapist T5, relative to today."""

    sessions: dict[str, dict[str, Any]]
    series_start: datetime  # local
    series_count: int
    series_exdates: list[datetime]  # local
    series_live_starts: list[datetime]  # UTC
    moved: str


def _sid(n: int) -> str:
    return str(uuid.UUID(int=0xA800 + n))


def _at(day: date, hour: int, minutes: int = 60) -> tuple[str, str]:
    start = datetime.combine(day, time(hour), ZONE)
    end = start.astimezone(UTC) + timedelta(minutes=minutes)
    return start.astimezone(UTC).isoformat(), end.isoformat()


def _session(n: int, client: str, day: date, hour: int, **extra: Any) -> dict[str, Any]:
    start, end = _at(day, hour)
    return {
        "id": _sid(n),
        "therapist_id": T5,
        "client_id": client,
        "start_time": start,
        "end_time": end,
        "location_type": "clinic",
        "service_code": "97153",
        **extra,
    }


def _previous_transition(today: date) -> date:
    """The last day before `today` on which the zone's UTC offset changed."""
    day = today
    while True:
        before = datetime.combine(day - timedelta(days=1), time(12), ZONE).utcoffset()
        if datetime.combine(day, time(12), ZONE).utcoffset() != before:
            return day
        day -= timedelta(days=1)


async def _seed_schedule(db: Database) -> Schedule:
    today = datetime.now(ZONE).date()
    transition = _previous_transition(today)
    first = transition - timedelta(days=14)
    first -= timedelta(days=first.weekday())  # a Monday at least two weeks before the change
    count = (today + timedelta(days=28) - first).days // 7 + 1
    moved_k = count - 2
    sessions: dict[str, dict[str, Any]] = {
        "single_a": _session(
            1, C5, today + timedelta(days=3), 9, notes="Sensitive note about behaviour"
        ),
        "single_b": _session(
            2,
            C6,
            today + timedelta(days=4),
            13,
            service_code="97155",
            location_type="telehealth",
        ),
        "cancelled": _session(3, C6, today + timedelta(days=5), 9, status="cancelled"),
        "too_old": _session(4, C6, today - timedelta(days=45), 9, status="completed"),
        "too_far": _session(5, C6, today + timedelta(days=200), 9),
        "plain_1": _session(
            6, C6, today + timedelta(days=8), 12, series_id=PLAIN_SERIES, service_code="97156"
        ),
        "plain_2": _session(
            7, C6, today + timedelta(days=15), 12, series_id=PLAIN_SERIES, service_code="97156"
        ),
    }
    exdates: list[datetime] = []
    live: list[datetime] = []
    for k in range(count):
        day = first + timedelta(weeks=k)
        local = datetime.combine(day, time(16), ZONE)
        if k == 1:  # skipped by the recurrence's own exdates: no session at all
            exdates.append(local)
            continue
        status = "completed" if day < today else "scheduled"
        extra: dict[str, Any] = {"series_id": SERIES, "location_type": "home", "status": status}
        if k == 2:
            extra["status"] = "cancelled"
            exdates.append(local)
        hour = 16
        if k == moved_k:
            hour = 18
            exdates.append(local)
        sessions[f"series_{k}"] = _session(100 + k, C5, day, hour, **extra)
        if k not in (2, moved_k):
            live.append(local.astimezone(UTC))
    doc = {
        "therapists": [
            {
                "id": T5,
                "organization_id": ORG_A,
                "full_name": "Nora Northcott",
                "email": "nora@alpha.example",
                "credential": "BCBA",
                "time_zone": ZONE_NAME,
            }
        ],
        "clients": [
            {
                "id": C5,
                "organization_id": ORG_A,
                "full_name": "Riley Jordan Parkinson",
                "email": SECRETS[0],
                "phone": SECRETS[1],
                "therapist_ids": [T5],
            },
            {
                "id": C6,
                "organization_id": ORG_A,
                "full_name": "Samwise Leeroy",
                "therapist_ids": [T5],
            },
        ],
        "users": [
            {
                "id": U_T5,
                "organization_id": ORG_A,
                "email": "nora@alpha.example",
                "full_name": "Nora Northcott",
                "role": "therapist",
                "therapist_id": T5,
            }
        ],
        "sessions": list(sessions.values()),
    }
    async with db.write() as conn:
        await import_document(conn, parse_document(doc))
        await conn.execute(
            insert(Hold).values(
                organization_id=uuid.UUID(ORG_A),
                hold_key="confirmed-series-hold",
                therapist_id=uuid.UUID(T5),
                client_id=uuid.UUID(C5),
                created_by=uuid.UUID(U_ADMIN),
                status="confirmed",
                expires_at=datetime.now(UTC),
                time_zone=ZONE_NAME,
                service_code="97153",
                location_type="home",
                recurrence={
                    "rrule": f"FREQ=WEEKLY;BYDAY=MO;COUNT={count}",
                    "exdates": [(first + timedelta(weeks=1)).isoformat()],
                },
                series_id=uuid.UUID(SERIES),
            )
        )
    return Schedule(
        sessions=sessions,
        series_start=datetime.combine(first, time(16), ZONE),
        series_count=count,
        series_exdates=exdates,
        series_live_starts=live,
        moved=_sid(100 + moved_k),
    )


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post("/calendar/feeds", json=body, headers=headers)


async def test_therapist_creates_own_feed_and_reads_it(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    response = await _create(client, clinic.headers("therapist"), label="phone")
    assert response.status_code == 201
    body = response.json()
    token = body["path"].removeprefix("/calendar/").removesuffix(".ics")
    assert len(token) == 43  # 256 random bits
    assert body["url"] == f"http://test/calendar/{token}.ics"
    assert body["feed"]["therapist_id"] == T1
    assert body["feed"]["label"] == "phone"
    assert body["feed"]["revoked_at"] is None
    assert response.headers["cache-control"] == "no-store"
    async with db.read() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM calendar_feeds"))).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    feed = await client.get(body["path"])
    assert feed.status_code == 200
    assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
    assert feed.headers["cache-control"] == "no-store"
    calendar: Any = Calendar.from_ical(feed.content)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    assert calendar["X-WR-TIMEZONE"] == "America/New_York"


@pytest.mark.parametrize(
    ("who", "therapist_id", "status"),
    [
        ("therapist", T2, 404),  # another therapist of the organization
        ("therapist", TB, 404),  # another organization
        ("scheduler", T2, 201),
        ("admin", T1, 201),
        ("admin_b", T1, 404),
        ("admin", str(uuid.UUID(int=0xA204)), 404),  # archived therapist
        ("admin", None, 400),  # an admin has no therapist of their own
    ],
)
async def test_who_may_create_a_feed(
    client: httpx.AsyncClient, clinic: Clinic, who: str, therapist_id: str | None, status: int
) -> None:
    body = {"therapist_id": therapist_id} if therapist_id else {}
    response = await _create(client, clinic.headers(who), **body)
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["feed"]["therapist_id"] == therapist_id
    else:
        assert response.json()["code"] == {404: "NOT_FOUND", 400: "VALIDATION_ERROR"}[status]
    assert (await client.post("/calendar/feeds", json={})).status_code == 401


async def test_listing_and_revocation(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    own = (await _create(client, clinic.headers("therapist"))).json()
    other = (await _create(client, clinic.headers("scheduler"), therapist_id=T2)).json()
    by_admin = (await _create(client, clinic.headers("admin"), therapist_id=T1)).json()

    listed = await client.get("/calendar/feeds", headers=clinic.headers("therapist"))
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["feeds"]] == [by_admin["feed"]["id"], own["feed"]["id"]]
    for secret in (own["path"], other["path"], by_admin["path"]):
        token = secret.removeprefix("/calendar/").removesuffix(".ics")
        assert token not in listed.text
    every = await client.get("/calendar/feeds", headers=clinic.headers("admin"))
    assert len(every.json()["feeds"]) == 3
    page = await client.get("/calendar/feeds", params={"limit": 2}, headers=clinic.headers("admin"))
    cursor = page.json()["pagination"]["next_cursor"]
    rest = await client.get(
        "/calendar/feeds", params={"limit": 2, "cursor": cursor}, headers=clinic.headers("admin")
    )
    assert [f["id"] for f in page.json()["feeds"] + rest.json()["feeds"]] == [
        f["id"] for f in every.json()["feeds"]
    ]
    foreign = await client.get("/calendar/feeds", headers=clinic.headers("admin_b"))
    assert foreign.json()["feeds"] == []

    # Another therapist, or another organization, cannot see (so cannot revoke) the feed.
    for who in ("therapist2", "admin_b"):
        response = await client.delete(
            f"/calendar/feeds/{own['feed']['id']}", headers=clinic.headers(who)
        )
        assert response.status_code == 404
    assert (await client.get(own["path"])).status_code == 200

    # The therapist may revoke a feed an admin made for them.
    revoked = await client.delete(
        f"/calendar/feeds/{by_admin['feed']['id']}", headers=clinic.headers("therapist")
    )
    assert revoked.status_code == 200
    assert revoked.json()["already_revoked"] is False
    assert revoked.json()["feed"]["revoked_at"] is not None
    gone = await client.get(by_admin["path"])
    assert gone.status_code == 404
    assert gone.json()["code"] == "NOT_FOUND"
    again = await client.delete(
        f"/calendar/feeds/{by_admin['feed']['id']}", headers=clinic.headers("admin")
    )
    assert again.json()["already_revoked"] is True
    assert again.json()["feed"]["revoked_at"] == revoked.json()["feed"]["revoked_at"]
    assert (await client.get(own["path"])).status_code == 200

    listed = await client.get("/calendar/feeds", headers=clinic.headers("therapist"))
    assert [f["id"] for f in listed.json()["feeds"]] == [own["feed"]["id"]]
    with_revoked = await client.get(
        "/calendar/feeds", params={"include_revoked": "true"}, headers=clinic.headers("therapist")
    )
    assert len(with_revoked.json()["feeds"]) == 2

    audit = await client.get(
        "/admin/audit-events",
        params={"entity_type": "calendar_feed", "entity_id": by_admin["feed"]["id"]},
        headers=clinic.headers("admin"),
    )
    assert [e["action"] for e in audit.json()["data"]["events"]] == [
        "calendar_feed.revoke",
        "calendar_feed.create",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/calendar/" + "A" * 43 + ".ics",
        "/calendar/short.ics",
        "/calendar/" + "A" * 200 + ".ics",
        "/calendar/%00%01.ics",
    ],
)
async def test_unknown_tokens_are_not_found(
    client: httpx.AsyncClient, clinic: Clinic, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


async def test_feed_content_is_phi_minimised_and_series_compacted(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    schedule = await _seed_schedule(db)
    created = await _create(client, {"Authorization": f"Bearer {_token(clinic)}"})
    assert created.status_code == 201
    feed = await client.get(created.json()["path"])
    assert feed.status_code == 200
    text_body = feed.content.decode()
    for word in (*NAMES, *SECRETS, "example", "manding"):
        assert word not in text_body

    calendar: Any = Calendar.from_ical(feed.content)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == [ZONE_NAME]
    events: dict[str, Any] = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    s = schedule.sessions
    uid = {k: f"{s[k]['id']}@therapy-scheduler" for k in s}
    master_uid = f"series-{SERIES}@therapy-scheduler"
    assert {k: str(e["SUMMARY"]) for k, e in events.items()} == {
        uid["single_a"]: "ABA 97153 \u2013 R.P.",
        uid["single_b"]: "ABA 97155 \u2013 S.L.",
        uid["plain_1"]: "ABA 97156 \u2013 S.L.",
        uid["plain_2"]: "ABA 97156 \u2013 S.L.",
        f"{schedule.moved}@therapy-scheduler": "ABA 97153 \u2013 R.P.",
        master_uid: "ABA 97153 \u2013 R.P.",
    }
    single = events[uid["single_b"]]
    assert single["DTSTART"].params["TZID"] == ZONE_NAME
    assert single["DTSTART"].dt == datetime.fromisoformat(s["single_b"]["start_time"])
    assert single["DTSTART"].dt.tzinfo is not None
    assert str(single["LOCATION"]) == "Telehealth"
    assert str(single["STATUS"]) == "CONFIRMED"
    assert str(single["DESCRIPTION"]) == (
        "Service 97155 (Adaptive behavior treatment with protocol modification). "
        "Location: Telehealth."
    )

    # Exactly one VEVENT carries a recurrence: the series booked with a rule.
    recurring = [e for e in events.values() if "RRULE" in e]
    assert [str(e["UID"]) for e in recurring] == [master_uid]
    master = recurring[0]
    assert master["RRULE"].to_ical().decode() == (
        f"FREQ=WEEKLY;COUNT={schedule.series_count};BYDAY=MO"
    )
    assert master["DTSTART"].params["TZID"] == ZONE_NAME
    assert master["DTSTART"].dt == schedule.series_start
    assert master["DTEND"].dt - master["DTSTART"].dt == timedelta(hours=1)
    assert str(master["LOCATION"]) == "Home"
    exdate_props = master["EXDATE"] if isinstance(master["EXDATE"], list) else [master["EXDATE"]]
    exdates = [d.dt for prop in exdate_props for d in prop.dts]
    assert exdates == schedule.series_exdates
    assert all(d.tzinfo is not None and str(d.tzinfo) == ZONE_NAME for d in exdates)

    # Expanding the rule as a calendar client would gives exactly the live sessions, and keeps the
    # local 16:00 on both sides of the daylight-saving change (so the UTC hour differs).
    instances = list(rrulestr(master["RRULE"].to_ical().decode(), dtstart=master["DTSTART"].dt))
    shown = [i.astimezone(UTC) for i in instances if i not in exdates]
    assert shown == schedule.series_live_starts
    assert {i.astimezone(ZONE).hour for i in instances} == {16}
    assert len({i.astimezone(UTC).hour for i in instances}) == 2

    # Cancelled sessions, and sessions outside the window, are not in the feed.
    for key in ("cancelled", "too_old", "too_far"):
        assert uid[key] not in events


def _token(clinic: Clinic) -> str:
    return mint_token(clinic.settings, uuid.UUID(U_T5))


async def test_feed_fetch_is_audited_and_runs_constant_queries(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    await _seed_schedule(db)
    created = (await _create(client, {"Authorization": f"Bearer {_token(clinic)}"})).json()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.reader.sync_engine, "before_cursor_execute", count)
    try:
        response = await client.get(created["path"])
    finally:
        event.remove(db.reader.sync_engine, "before_cursor_execute", count)
    assert response.status_code == 200
    assert len(statements) == 3  # the feed, its sessions (with whole series), their recurrences

    audit = await client.get(
        "/admin/audit-events",
        params={"entity_type": "calendar_feed", "action": "phi.read"},
        headers=clinic.headers("admin"),
    )
    [read] = audit.json()["data"]["events"]
    assert read["entity_id"] == created["feed"]["id"]
    assert read["actor_user_id"] is None
    assert read["client_ids"] == sorted([C5, C6])
    assert read["details"]["endpoint"] == "calendar-feed"


async def test_unchanged_feed_revalidates_with_304(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    created = (await _create(client, clinic.headers("therapist"))).json()
    first = await client.get(created["path"])
    etag = first.headers["etag"]
    again = await client.get(created["path"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    stale = await client.get(created["path"], headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    assert stale.content == first.content
