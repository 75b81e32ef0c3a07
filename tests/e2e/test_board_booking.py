"""Booking and cancelling from the board in a real browser, checked through the API afterwards.

The tests book in weeks after the demo clinic's sessions (from three weeks ahead), each on its own
weekday with its own therapist, so that they never block each other; the cancellation tests first
make the session they cancel, relative to now."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import create_engine, select

from tests.e2e.board import ORG_ZONE, Board, dropdown, iso, monday_of, parse_instant, today_in
from tests.e2e.conftest import BoardServer, screenshot
from therapy_scheduler.models import Authorization, AuthorizationService, Caseload, Client

pytestmark = pytest.mark.e2e

TZ = ZoneInfo(ORG_ZONE)
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = 0, 1, 2, 3, 4


@dataclass
class Plan:
    therapist: dict[str, str]
    weeks_ahead: int  # how many times to press "Next"
    slot: dict[str, str]  # the free slot to click
    start: datetime  # the chosen start (slot start + 30 min, local wall clock kept weekly)
    clients: list[dict[str, str]]


def _availability(api: httpx.Client, therapist_id: str, first: date, days: int) -> dict[str, Any]:
    response = api.get(
        "/get-schedule-data-batch",
        params={
            "start_date": first.isoformat(),
            "end_date": (first + timedelta(days=days - 1)).isoformat(),
            "therapist_ids": therapist_id,
            "include_availability": "true",
            "batch_size": 1,
        },
    )
    assert response.status_code == 200, response.text
    return {a["date"]: a for a in response.json()["data"]["availability"]}


def _covered(free: list[dict[str, str]], start: datetime, minutes: int) -> bool:
    end = start + timedelta(minutes=minutes)
    return any(
        parse_instant(s["start_time"]) <= start and end <= parse_instant(s["end_time"])
        for s in free
    )


def _clients(server: BoardServer, therapist_id: str, last_day: date) -> list[dict[str, str]]:
    """Active caseload clients of the therapist whose approved authorization covers the bookings,
    most 97153 units first."""
    engine = create_engine(f"sqlite:///{server.db_path}")
    query = (
        select(Client.id, Client.full_name)
        .join(Caseload, Caseload.client_id == Client.id)
        .join(Authorization, Authorization.client_id == Client.id)
        .join(AuthorizationService, AuthorizationService.authorization_id == Authorization.id)
        .where(
            Caseload.therapist_id == uuid.UUID(therapist_id),
            Client.status == "active",
            Client.archived_at.is_(None),
            Authorization.status == "approved",
            Authorization.end_date >= last_day,
            AuthorizationService.service_code == "97153",
        )
        .order_by(AuthorizationService.approved_units.desc(), Client.full_name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    return [{"id": str(r.id), "full_name": r.full_name} for r in rows]


def plan(server: BoardServer, therapist: dict[str, str], weekday: int, weeks: int = 1) -> Plan:
    """A free slot of at least two hours on `weekday`, from three weeks ahead, whose start + 30 min
    (same local time) is also free in the `weeks - 1` following weeks."""
    this_monday = monday_of(today_in(ORG_ZONE))
    with server.api("admin") as api:
        for ahead in range(3, 9):
            day = this_monday + timedelta(days=7 * ahead + weekday)
            calendar = _availability(api, therapist["id"], day, 7 * weeks)
            for slot in calendar.get(day.isoformat(), {}).get("free_slots", []):
                start = parse_instant(slot["start_time"])
                if parse_instant(slot["end_time"]) - start < timedelta(minutes=120):
                    continue
                wall = (start + timedelta(minutes=30)).astimezone(TZ).time()
                starts = [
                    datetime.combine(day + timedelta(days=7 * k), wall, TZ) for k in range(weeks)
                ]
                if all(
                    _covered(calendar.get(s.date().isoformat(), {}).get("free_slots", []), s, 60)
                    for s in starts
                ):
                    clients = _clients(server, therapist["id"], starts[-1].date())
                    assert len(clients) >= 2
                    return Plan(therapist, ahead, slot, starts[0], clients)
    raise AssertionError(f"no free slot found for therapist {therapist['id']}")


@pytest.fixture
def booking(board_server: BoardServer) -> BoardServer:
    """The board's server, for the booking tests: a booking route that answers 404 fails them."""
    return board_server


def _therapists(server: BoardServer) -> list[dict[str, str]]:
    with server.api("admin") as api:
        return [t for t in dropdown(api, "therapists")["therapists"] if t["status"] == "active"]


def _without_waitlist(server: BoardServer) -> list[dict[str, str]]:
    """Active therapists no waitlist entry waits for: a hold released in their row stays free
    (in a waited-for therapist's row the waitlist is offered the slot, docs/WAITLIST.md)."""
    with server.api("admin") as api:
        entries = api.get("/waitlist", params={"limit": 200}).json()["data"]
    waited = {t for e in entries for t in e["therapist_ids"] or []}
    return [t for t in _therapists(server) if t["id"] not in waited]


def _open_slot(board: Board, p: Plan) -> None:
    for _ in range(p.weeks_ahead):
        board.click_and_wait("#next-week")
    board.slot_block(p.therapist["id"], p.slot["start_time"]).click()
    expect(board.page.locator("#booking-dialog")).to_be_visible()


def _fill(page: Page, client_id: str, start: datetime, minutes: int = 60) -> None:
    page.select_option("#b-client", client_id)
    page.select_option("#b-start", iso(start))
    page.select_option("#b-duration", str(minutes))


def _clock(instant: datetime) -> str:
    local = instant.astimezone(TZ)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def _sessions_of(
    api: httpx.Client, client_id: str, day: date, days: int = 1
) -> list[dict[str, Any]]:
    response = api.get(
        "/get-sessions-optimized",
        params={
            "client_id": client_id,
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(days=days - 1)).isoformat(),
            "limit": 100,
        },
    )
    assert response.status_code == 200, response.text
    sessions: list[dict[str, Any]] = response.json()["data"]["sessions"]
    return sorted(sessions, key=lambda s: s["start_time"])


def test_hold_release_hold_confirm(booking: BoardServer, page: Page) -> None:
    p = plan(booking, _without_waitlist(booking)[1], TUESDAY)
    client = p.clients[0]
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)

    with page.expect_response(re.compile(r".*/sessions/hold$")) as first:
        page.click("#b-hold-button")
    held = first.value.json()
    assert first.value.status == 200, held
    end = p.start + timedelta(minutes=60)
    assert held["occurrences"] == [{"start_time": iso(p.start), "end_time": iso(end)}]
    countdown = page.locator("#b-countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+:\d\d$"))
    minutes, seconds = countdown.inner_text().split(":")
    assert 240 <= int(minutes) * 60 + int(seconds) <= 300  # the clinic's 5-minute holds
    expect(page.locator("#b-occurrences li")).to_have_count(1)
    listed = [t.replace("\u202f", " ") for t in page.locator("#b-occurrences li").all_inner_texts()]
    day = p.start.astimezone(TZ)
    assert listed == [f"{day.strftime('%a, %b')} {day.day}, {_clock(p.start)}\u2013{_clock(end)}"]
    board.assert_readable("#booking-dialog")
    screenshot(page, "board-hold.png", full_page=False)

    with page.expect_response(re.compile(r".*/sessions/hold/.+")) as released:
        page.click("#b-release")
    assert released.value.request.method == "DELETE"
    release = released.value.json()
    assert {key: release[key] for key in ("success", "hold_key", "released")} == {
        "success": True,
        "hold_key": held["hold_key"],
        "released": True,
    }
    expect(page.locator("#status")).to_have_text("Hold released; the slot is free again.")

    with page.expect_response(re.compile(r".*/sessions/hold$")) as second:
        page.click("#b-hold-button")
    assert second.value.status == 200
    page.fill("#b-notes", "First session after intake")
    with page.expect_response(re.compile(r".*/sessions/confirm$")) as confirmed:
        page.click("#b-confirm")
    booked = confirmed.value.json()
    assert confirmed.value.status == 200, booked
    expect(page.locator("#booking-dialog")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(
        f"Booked 1 session for {client['full_name']} with {p.therapist['full_name']}"
    )
    board.wait_loaded()
    block = board.session_block(booked["session"]["id"])
    expect(block).to_contain_text(client["full_name"])
    expect(block).to_have_attribute("data-status", "scheduled")

    with booking.api("admin") as api:
        sessions = _sessions_of(api, client["id"], p.start.date())
    assert [
        (s["id"], s["therapist_id"], s["start_time"], s["end_time"], s["status"], s["notes"])
        for s in sessions
    ] == [
        (
            booked["session"]["id"],
            p.therapist["id"],
            iso(p.start),
            iso(end),
            "scheduled",
            "First session after intake",
        )
    ]


def test_closing_the_dialog_releases_the_hold(booking: BoardServer, page: Page) -> None:
    p = plan(booking, _without_waitlist(booking)[-1], MONDAY)
    client = p.clients[0]
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)
    with page.expect_response(re.compile(r".*/sessions/hold$")) as hold:
        page.click("#b-hold-button")
    assert hold.value.status == 200, hold.value.text()
    # The response has arrived; wait until the page has shown the hold before closing the dialog.
    expect(page.locator("#b-countdown")).to_be_visible()
    with page.expect_response(re.compile(r".*/sessions/hold/.+")) as released:
        page.keyboard.press("Escape")
    assert released.value.request.method == "DELETE"
    assert released.value.status == 200
    expect(page.locator("#booking-dialog")).to_be_hidden()
    expect(page.locator("#status")).to_have_text("Hold released; the slot is free again.")
    _assert_slot_free(booking, p, client)


def test_closing_the_dialog_while_the_hold_is_on_its_way_releases_it(
    booking: BoardServer, page: Page
) -> None:
    """The scheduler presses Escape before the server has answered the hold: the hold that then
    arrives has nobody to confirm it, so the page gives it back at once."""
    p = plan(booking, _without_waitlist(booking)[-1], MONDAY)  # released again, like the test above
    client = p.clients[0]
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)
    held: list[Route] = []
    page.route(re.compile(r".*/sessions/hold$"), lambda route: held.append(route))  # it waits here
    page.click("#b-hold-button")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the hold request never left the page"
    page.keyboard.press("Escape")
    expect(page.locator("#booking-dialog")).to_be_hidden()
    with page.expect_response(re.compile(r".*/sessions/hold/.+")) as released:
        held[0].continue_()  # the server places the hold now; the dialog is already closed
    assert released.value.request.method == "DELETE"
    assert released.value.status == 200
    expect(page.locator("#status")).to_have_text("Hold released; the slot is free again.")
    _assert_slot_free(booking, p, client)


def _assert_slot_free(booking: BoardServer, p: Plan, client: dict[str, str]) -> None:
    """Anyone can hold the slot again (and the probe hold is given back)."""
    with booking.api("admin") as api:
        again = api.post(
            "/sessions/hold",
            json={
                "session": {
                    "therapist_id": p.therapist["id"],
                    "client_id": client["id"],
                    "start_time": iso(p.start),
                },
                "duration_minutes": 60,
                "time_zone": ORG_ZONE,
            },
        )
        assert again.status_code == 200, again.text
        api.delete(f"/sessions/hold/{again.json()['hold_key']}")


def test_weekly_recurrence(booking: BoardServer, page: Page) -> None:
    p = plan(booking, _therapists(booking)[2], WEDNESDAY, weeks=3)
    client = p.clients[0]
    board = Board(page, booking.url).open().sign_in(booking.tokens["admin"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)
    page.check("#b-repeat")
    page.fill("#b-count", "3")
    # The forecast (a dry run) lists the series before anything is held.
    expect(page.locator("#b-forecast-occurrences > li")).to_have_count(3)
    expect(page.locator(".forecast-title")).to_have_text("All 3 sessions can be held")
    expect(page.locator('#b-forecast-occurrences > li[data-bookable="true"]')).to_have_count(3)
    with page.expect_response(re.compile(r".*/sessions/hold$")) as hold:
        page.click("#b-hold-button")
    sent = hold.value.request.post_data_json
    assert sent is not None
    assert "dry_run" not in sent
    assert sent["recurrence"] == {"rrule": "FREQ=WEEKLY;COUNT=3"}
    assert hold.value.status == 200, hold.value.text()
    expect(page.locator("#b-occurrences li")).to_have_count(3)
    expect(page.locator(".hold-title")).to_have_text("Held 3 sessions")
    expect(page.locator("#b-forecast")).to_be_hidden()
    board.assert_readable("#booking-dialog")
    with page.expect_response(re.compile(r".*/sessions/confirm$")) as confirmed:
        page.click("#b-confirm")
    assert confirmed.value.status == 200, confirmed.value.text()
    expect(page.locator("#status")).to_contain_text("Booked 3 sessions")

    wall = p.start.astimezone(TZ).time()
    expected = [
        datetime.combine(p.start.astimezone(TZ).date() + timedelta(days=7 * k), wall, TZ)
        for k in range(3)
    ]
    with booking.api("scheduler") as api:
        sessions = _sessions_of(api, client["id"], p.start.date(), days=15)
    assert [s["start_time"] for s in sessions] == [iso(s) for s in expected]
    assert [s["end_time"] for s in sessions] == [iso(s + timedelta(minutes=60)) for s in expected]
    series = {s["series_id"] for s in sessions}
    assert len(series) == 1
    assert None not in series
    board.wait_loaded()
    board.click_and_wait("#next-week")
    expect(board.session_block(sessions[1]["id"])).to_contain_text(client["full_name"])


def test_conflict_offers_alternatives(booking: BoardServer, page: Page) -> None:
    p = plan(booking, _therapists(booking)[3], THURSDAY)
    client, other = p.clients[0], p.clients[1]
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)

    # Meanwhile someone else holds the same therapist at that time.
    with booking.api("admin") as api:
        # The client's sessions where alternatives may fall (the demo has recurring series there).
        first_day = p.start.astimezone(TZ).date() - timedelta(days=1)
        existing = {s["id"] for s in _sessions_of(api, client["id"], first_day, days=17)}
        taken = api.post(
            "/sessions/hold",
            json={
                "session": {
                    "therapist_id": p.therapist["id"],
                    "client_id": other["id"],
                    "start_time": iso(p.start),
                },
                "duration_minutes": 60,
                "time_zone": ORG_ZONE,
            },
        )
    assert taken.status_code == 200, taken.text

    with page.expect_response(re.compile(r".*/sessions/hold$")) as refused:
        page.click("#b-hold-button")
    assert refused.value.status == 409
    error = refused.value.json()
    assert error["code"] == "THERAPIST_HOLD_CONFLICT"
    problem = page.locator("#b-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("THERAPIST_HOLD_CONFLICT")
    alternatives = page.locator("#b-problem .alternative")
    expect(alternatives).to_have_count(len(error["details"]["alternatives"]))
    assert 1 <= len(error["details"]["alternatives"]) <= 3
    board.assert_readable("#booking-dialog")
    screenshot(page, "board-conflict.png", full_page=False)
    choice = alternatives.first
    start, end = choice.get_attribute("data-start"), choice.get_attribute("data-end")
    assert start
    assert end
    with page.expect_response(re.compile(r".*/sessions/hold$")) as hold:
        choice.click()
    assert hold.value.status == 200, hold.value.text()
    assert hold.value.json()["occurrences"] == [{"start_time": start, "end_time": end}]
    with page.expect_response(re.compile(r".*/sessions/confirm$")) as confirmed:
        page.click("#b-confirm")
    assert confirmed.value.status == 200, confirmed.value.text()

    with booking.api("admin") as api:
        sessions = [
            s
            for s in _sessions_of(api, client["id"], parse_instant(start).astimezone(TZ).date())
            if s["id"] not in existing
        ]
        api.delete(f"/sessions/hold/{taken.json()['hold_key']}")
    assert [(s["therapist_id"], s["start_time"], s["end_time"], s["status"]) for s in sessions] == [
        (p.therapist["id"], start, end, "scheduled")
    ]


def test_therapist_books_own_slot(booking: BoardServer, page: Page) -> None:
    with booking.api("therapist") as api:
        me = dropdown(api, "therapists")["therapists"][0]
    p = plan(booking, me, FRIDAY)
    client = p.clients[0]
    board = Board(page, booking.url).open().sign_in(booking.tokens["therapist"])
    _open_slot(board, p)
    _fill(page, client["id"], p.start)
    with page.expect_response(re.compile(r".*/sessions/hold$")) as hold:
        page.click("#b-hold-button")
    assert hold.value.status == 200, hold.value.text()
    with page.expect_response(re.compile(r".*/sessions/confirm$")) as confirmed:
        page.click("#b-confirm")
    assert confirmed.value.status == 200, confirmed.value.text()
    with booking.api("admin") as api:
        sessions = _sessions_of(api, client["id"], p.start.date())
    assert [(s["therapist_id"], s["start_time"], s["status"]) for s in sessions] == [
        (me["id"], iso(p.start), "scheduled")
    ]


def _busy(
    api: httpx.Client, who: str, person: str, first: date, last: date
) -> list[tuple[datetime, datetime]]:
    """The times of a therapist's or client's sessions (not cancelled) starting within the days."""
    response = api.get(
        "/get-sessions-optimized",
        params={
            who: person,
            "start_date": first.isoformat(),
            "end_date": last.isoformat(),
            "limit": 100,
        },
    )
    assert response.status_code == 200, response.text
    sessions = response.json()["data"]["sessions"]
    assert len(sessions) < 100
    return [
        (parse_instant(s["start_time"]), parse_instant(s["end_time"]))
        for s in sessions
        if s["status"] != "cancelled"
    ]


def _session_to_cancel(server: BoardServer, late: bool) -> dict[str, Any]:
    """A scheduled one-hour session made for the test through the import API, relative to now: it
    starts 3 to 22 hours from now for a late cancellation (the demo's policy asks 24 hours' notice),
    2 to 3 days from now otherwise; on the hour, between 08:00 and 17:00 in the clinic's zone (a day
    of the board's week), when a therapist and a client of their caseload are both free. Returned as
    the session list shows it."""
    hour = datetime.now(ZoneInfo("UTC")).replace(minute=0, second=0, microsecond=0)
    first, last = (3, 22) if late else (48, 72)
    starts = [
        start
        for start in (hour + timedelta(hours=h) for h in range(first, last + 1))
        if 8 <= start.astimezone(TZ).hour < 17
    ]
    days = (starts[0].astimezone(TZ).date() - timedelta(days=1), starts[-1].astimezone(TZ).date())
    with server.api("admin") as api:
        for therapist in reversed(_therapists(server)):
            taken = _busy(api, "therapist_id", therapist["id"], *days)
            for client in _clients(server, therapist["id"], days[1]):
                both = taken + _busy(api, "client_id", client["id"], *days)
                for start in starts:
                    end = start + timedelta(hours=1)
                    if any(s < end and start < e for s, e in both):
                        continue
                    session_id = str(uuid.uuid4())
                    imported = api.post(
                        "/admin/import",
                        json={
                            "sessions": [
                                {
                                    "id": session_id,
                                    "therapist_id": therapist["id"],
                                    "client_id": client["id"],
                                    "start_time": iso(start),
                                    "end_time": iso(end),
                                    "status": "scheduled",
                                    "location_type": "clinic",
                                    "service_code": "97153",
                                }
                            ]
                        },
                    )
                    assert imported.status_code == 200, imported.text
                    listed = _sessions_of(api, client["id"], start.astimezone(TZ).date())
                    return next(s for s in listed if s["id"] == session_id)
    raise AssertionError(f"no free hour for a {'late' if late else 'timely'} cancellation")


@pytest.mark.parametrize("notice", ["late", "in_time"])
def test_cancel_with_reason(booking: BoardServer, page: Page, notice: str) -> None:
    late = notice == "late"
    session = _session_to_cancel(booking, late)
    start_day = parse_instant(session["start_time"]).astimezone(TZ).date()
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    if monday_of(start_day) > monday_of(today_in(ORG_ZONE)):
        board.click_and_wait("#next-week")
    board.session_block(session["id"]).click()
    dialog = page.locator("#session-dialog")
    expect(dialog).to_be_visible()
    page.click("#s-cancel")  # no reason yet: the page asks for one
    expect(page.locator("#s-reason")).to_have_attribute("aria-invalid", "true")
    page.select_option("#s-reason", "client_illness")
    with page.expect_response(re.compile(r".*/sessions/cancel$")) as cancelled:
        page.click("#s-cancel")
    result = cancelled.value.json()
    assert cancelled.value.status == 200, result
    assert cancelled.value.request.post_data_json == {
        "session_id": session["id"],
        "reason": "client_illness",
    }
    assert result["late_cancellation"] is late
    expect(page.locator("#s-result")).to_have_text(
        "Session cancelled — late cancellation (less notice than the policy requires)."
        if late
        else "Session cancelled with enough notice (not a late cancellation)."
    )
    expect(page.locator('#session-dialog dd[data-field="Status"]')).to_have_text("Cancelled")
    board.assert_readable("#session-dialog")
    if late:
        screenshot(page, "board-cancel.png", full_page=False)
    page.click("#s-close")
    board.wait_loaded()
    expect(board.session_block(session["id"])).to_have_attribute("data-status", "cancelled")
    with booking.api("admin") as api:
        after = _sessions_of(api, session["client_id"], start_day)
    assert [(s["id"], s["status"]) for s in after if s["id"] == session["id"]] == [
        (session["id"], "cancelled")
    ]


def test_series_forecast_before_hold(booking: BoardServer, page: Page) -> None:
    """The demo's Riley Okafor: a ten-week series shows, before Hold, the weeks after the end of the
    authorization (docs/BOARD.md); nothing is held by the forecast."""
    from therapy_scheduler.demo.clinic import FORECAST_CLIENT_ID
    from therapy_scheduler.models import Therapist

    engine = create_engine(f"sqlite:///{booking.db_path}")
    with engine.connect() as conn:
        rbt = conn.execute(
            select(Therapist.id, Therapist.full_name)
            .join(Caseload, Caseload.therapist_id == Therapist.id)
            .where(Caseload.client_id == FORECAST_CLIENT_ID, Therapist.credential == "RBT")
        ).one()
    engine.dispose()
    p = plan(booking, {"id": str(rbt.id), "full_name": rbt.full_name}, THURSDAY)
    board = Board(page, booking.url).open().sign_in(booking.tokens["scheduler"])
    _open_slot(board, p)
    _fill(page, str(FORECAST_CLIENT_ID), p.start)
    page.check("#b-repeat")
    page.fill("#b-count", "10")
    expect(page.locator("#b-forecast-occurrences > li")).to_have_count(10)
    expect(page.locator(".forecast-summary")).to_contain_text(
        "fall after the authorization ends on"
    )
    blocked = page.locator('#b-forecast-occurrences > li[data-bookable="false"]')
    expect(blocked.first).to_be_visible()
    expect(page.locator(".forecast-title")).to_contain_text("of 10 sessions can be held")
    board.assert_readable("#booking-dialog")
    screenshot(page, "board-forecast.png", full_page=False)
    with booking.api("scheduler") as api:
        sessions = _sessions_of(api, str(FORECAST_CLIENT_ID), p.start.date(), days=70)
    assert sessions == []
