"""The read side of the board in a real browser: what it shows is exactly what the API returns."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.board import (
    ORG_ZONE,
    Board,
    dropdown,
    monday_of,
    parse_instant,
    supervisions,
    today_in,
    week_from_api,
)
from tests.e2e.conftest import BoardServer, screenshot

pytestmark = pytest.mark.e2e

TOKEN_KEY = "therapy-scheduler.board.token"


def long_day(day: object) -> str:
    assert hasattr(day, "strftime")
    return f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}, {day.year}"  # type: ignore[attr-defined]


def time_label(instant: str, zone: str) -> str:
    local = parse_instant(instant).astimezone(ZoneInfo(zone))
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def local_day(instant: str, zone: str) -> str:
    return parse_instant(instant).astimezone(ZoneInfo(zone)).date().isoformat()


def plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


def _active_therapists(server: BoardServer) -> list[dict[str, str]]:
    with server.api("admin") as api:
        therapists: list[dict[str, str]] = dropdown(api, "therapists")["therapists"]
    return [t for t in therapists if t["status"] == "active"]


def test_admin_week_shows_what_the_api_returns(board_server: BoardServer, page: Page) -> None:
    therapists = _active_therapists(board_server)
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    monday = monday_of(today_in(ORG_ZONE))

    expect(page.locator("#week-title")).to_have_text(f"Week of {long_day(monday)}")
    assert board.row_names() == [t["full_name"] for t in therapists]
    ids = [t["id"] for t in therapists]
    with board_server.api("admin") as api:
        week = week_from_api(api, monday, therapist_ids=ids, conflicts=True, availability=True)
        lists = dropdown(api, "service_codes,locations")
        # The board asks for the offers of the week's days, a day wider on each side (UTC).
        waitlist = api.get(
            "/waitlist/offers",
            params={
                "start": f"{(monday - timedelta(days=1)).isoformat()}T00:00:00Z",
                "end": f"{(monday + timedelta(days=8)).isoformat()}T00:00:00Z",
            },
        ).json()
    services = {c["code"]: c["label"] for c in lists["service_codes"]}
    locations = {loc["id"]: loc["name"] for loc in lists["locations"]}

    placed = board.placed_sessions()
    assert set(placed) == {s["id"] for s in week["sessions"]}
    for s in week["sessions"]:
        block = placed[s["id"]]
        assert block["therapist"] == s["therapist_id"]
        assert block["date"] == local_day(s["start_time"], ORG_ZONE)
        assert block["status"] == s["status"]
        assert s["client"]["full_name"] in block["text"]
        assert plain(block["text"]).startswith(time_label(s["start_time"], ORG_ZONE))
    flagged = {i for c in week["conflicts"] for i in c["session_ids"]} & set(placed)
    assert {i for i, b in placed.items() if b["conflict"] == "yes"} == flagged

    # Free slots: the future part of the API's free slots, each in its therapist's row.
    api_slots = {
        (a["therapist_id"], slot["end_time"]): slot
        for a in week["availability"]
        for slot in a["free_slots"]
    }
    shown = board.free_slots()
    for slot in shown:
        source = api_slots[(slot["therapist"], slot["end"])]
        assert source["start_time"] <= slot["start"] < slot["end"]
    soon = datetime.now(ZoneInfo("UTC")) + timedelta(minutes=30)
    must_show = {key for key, s in api_slots.items() if parse_instant(s["end_time"]) > soon}
    assert must_show <= {(s["therapist"], s["end"]) for s in shown}

    expect(page.locator("#summary")).to_have_text(
        f"{len(placed)} sessions · {len(flagged)} with conflicts · {len(shown)} free slots"
        f" · {len(waitlist['offers'])} open waitlist offers · {waitlist['waiting']} waiting"
        f" · times in {ORG_ZONE}"
    )
    # Grid semantics: a header row plus one row per therapist; 8 column headers.
    expect(page.locator("#grid > [role=row]")).to_have_count(len(therapists) + 1)
    expect(page.locator("#grid [role=columnheader]")).to_have_count(8)
    expect(page.locator("#grid [role=rowheader]")).to_have_count(len(therapists))
    expect(page.locator("#grid [role=gridcell]")).to_have_count(7 * len(therapists))
    # A session's details, with the authorization figures this role may see.
    # (One not in a supervision, whose dialog has one row more: tests/e2e/test_board_supervision.py.)
    in_supervision = {s["id"] for pair in supervisions(week["sessions"]) for s in pair}
    session = next(
        s
        for s in week["sessions"]
        if s.get("authorization") and s["location_id"] and s["id"] not in in_supervision
    )
    board.session_block(session["id"]).click()
    dialog = page.locator("#session-dialog")
    expect(dialog).to_be_visible()
    a = session["authorization"]
    start = parse_instant(session["start_time"]).astimezone(ZoneInfo(ORG_ZONE))
    assert plain(dialog.locator(".details").inner_text()).split("\n") == [
        "When",
        f"{start.strftime('%a, %b')} {start.day}, {time_label(session['start_time'], ORG_ZONE)}"
        f"\u2013{time_label(session['end_time'], ORG_ZONE)} ({ORG_ZONE})",
        "Therapist",
        session["therapist"]["full_name"],
        "Client",
        session["client"]["full_name"],
        "Service",
        f"{session['service_code']} · {services[session['service_code']]}",
        "Location",
        f"{locations[session['location_id']]} · {session['location_type'].capitalize()}",
        "Status",
        session["status"].replace("_", " ").capitalize().replace("No show", "No-show"),
        "Authorization",
        f"{a['units_remaining']} units left ({a['sessions_remaining']} sessions like this),"
        f" ends {a['end_date']}",
    ]
    board.assert_readable()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Only the token may ever be stored, and only when asked: nothing here.
    assert board.storage() == {"local": {}, "session": {}}
    screenshot(page, "board-admin.png")


def test_week_paging_and_keyboard(board_server: BoardServer, page: Page) -> None:
    ids = [t["id"] for t in _active_therapists(board_server)]
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["scheduler"])
    monday = monday_of(today_in(ORG_ZONE))
    api = board_server.api("scheduler")

    board.click_and_wait("#next-week")
    expect(page.locator("#week-title")).to_have_text(
        f"Week of {long_day(monday + timedelta(days=7))}"
    )
    next_week = week_from_api(api, monday + timedelta(days=7), therapist_ids=ids)
    assert set(board.placed_sessions()) == {s["id"] for s in next_week["sessions"]}

    board.click_and_wait("#prev-week")
    board.click_and_wait("#prev-week")
    expect(page.locator("#week-title")).to_have_text(
        f"Week of {long_day(monday - timedelta(days=7))}"
    )
    last_week = week_from_api(api, monday - timedelta(days=7), therapist_ids=ids)
    assert set(board.placed_sessions()) == {s["id"] for s in last_week["sessions"]}
    assert last_week["sessions"]  # the demo clinic worked last week

    board.click_and_wait("#this-week")
    expect(page.locator("#week-title")).to_have_text(f"Week of {long_day(monday)}")
    page.fill("#week-picker", (monday + timedelta(days=17)).isoformat())
    board.wait_loaded()
    expect(page.locator("#week-title")).to_have_text(
        f"Week of {long_day(monday + timedelta(days=14))}"
    )
    board.click_and_wait("#this-week")
    api.close()

    # Keyboard: one tab stop in the grid; arrows move between cells; Enter enters a day.
    first_row = page.locator("#grid [role=rowheader]").first
    first_row.focus()
    page.keyboard.press("ArrowRight")
    active = "() => ({role: document.activeElement.getAttribute('role'),"
    active += " date: document.activeElement.dataset.date || null,"
    active += " therapist: document.activeElement.dataset.therapistId || null,"
    active += " block: document.activeElement.classList.contains('block')})"
    state = page.evaluate(active)
    assert state == {
        "role": "gridcell",
        "date": monday.isoformat(),
        "therapist": ids[0],
        "block": False,
    }
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    state = page.evaluate(active)
    assert state["date"] == (monday + timedelta(days=1)).isoformat()
    assert state["therapist"] == ids[1]
    expect(page.locator("#grid [tabindex='0']")).to_have_count(1)
    has_blocks = page.evaluate("() => document.activeElement.querySelectorAll('.block').length")
    assert has_blocks > 0
    page.keyboard.press("Enter")
    assert page.evaluate(active)["block"] is True
    page.keyboard.press("Escape")
    assert page.evaluate(active) == {
        "role": "gridcell",
        "date": (monday + timedelta(days=1)).isoformat(),
        "therapist": ids[1],
        "block": False,
    }
    page.keyboard.press("End")
    assert page.evaluate(active)["date"] == (monday + timedelta(days=6)).isoformat()


def test_filters(board_server: BoardServer, page: Page) -> None:
    therapists = _active_therapists(board_server)
    ids = [t["id"] for t in therapists]
    monday = monday_of(today_in(ORG_ZONE))
    with board_server.api("admin") as api:
        week = week_from_api(api, monday, therapist_ids=ids)
        client_id = week["sessions"][0]["client_id"]
        by_client = week_from_api(api, monday, therapist_ids=ids, client_ids=[client_id])
        by_therapist = week_from_api(api, monday, therapist_ids=[ids[2]])
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])

    board.select_and_wait("#f-client", client_id)
    assert set(board.placed_sessions()) == {s["id"] for s in by_client["sessions"]}
    board.select_and_wait("#f-client", "")

    page.select_option("#f-location-type", "clinic")
    clinic = {s["id"] for s in week["sessions"] if s["location_type"] == "clinic"}
    assert clinic
    assert clinic != {s["id"] for s in week["sessions"]}
    assert set(board.placed_sessions()) == clinic
    page.select_option("#f-location-type", "")

    page.uncheck("#f-cancelled")
    assert set(board.placed_sessions()) == {
        s["id"] for s in week["sessions"] if s["status"] != "cancelled"
    }
    page.check("#f-cancelled")

    board.select_and_wait("#f-therapist", ids[2])
    assert board.row_names() == [therapists[2]["full_name"]]
    assert set(board.placed_sessions()) == {s["id"] for s in by_therapist["sessions"]}


def test_time_zone_switch(board_server: BoardServer, page: Page) -> None:
    ids = [t["id"] for t in _active_therapists(board_server)]
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    zone = "America/Los_Angeles"
    board.select_and_wait("#f-zone", zone)
    # The switch keeps the week shown, the organization's current one, and draws it in the new zone
    # (on a Monday before 8:00 UTC, today in Los Angeles is still in the week before).
    monday = monday_of(today_in(ORG_ZONE))
    with board_server.api("admin") as api:
        week = week_from_api(api, monday, therapist_ids=ids, time_zone=zone)
    placed = board.placed_sessions()
    assert set(placed) == {s["id"] for s in week["sessions"]}
    for s in week["sessions"]:
        assert placed[s["id"]]["date"] == local_day(s["start_time"], zone)
        assert plain(placed[s["id"]]["text"]).startswith(time_label(s["start_time"], zone))
    expect(page.locator("#summary")).to_contain_text(f"times in {zone}")


def test_booking_form_from_a_free_slot(board_server: BoardServer, page: Page) -> None:
    """Opening and closing the booking form sends nothing to the server."""
    with board_server.api("admin") as api:
        lists = dropdown(api, "clients,service_codes,locations,location_types")
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    board.click_and_wait("#next-week")
    slot = board.grid.locator(".block.free").first
    start, end = slot.get_attribute("data-start"), slot.get_attribute("data-end")
    assert start
    assert end
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    slot.click()
    dialog = page.locator("#booking-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#b-client")).to_be_focused()
    clients = page.locator("#b-client option").all_inner_texts()
    assert clients == ["Choose a client…"] + [
        c["full_name"] for c in lists["clients"] if c["status"] == "active"
    ]
    starts = page.locator("#b-start option").evaluate_all("els => els.map(e => e.value)")
    step = timedelta(minutes=15)
    first, last = parse_instant(start), parse_instant(end)
    assert [parse_instant(v) for v in starts] == [
        first + i * step for i in range(int((last - first) / step))
    ]
    expect(page.locator("#b-duration")).to_have_value(
        str(min(60, int((last - first).total_seconds() // 60) // 15 * 15))
    )
    services = page.locator("#b-service option").all_inner_texts()
    assert services == ["Organization default"] + [
        f"{c['code']} · {c['label']}" for c in lists["service_codes"]
    ]
    expect(page.locator("#b-count")).to_be_disabled()
    page.check("#b-repeat")
    expect(page.locator("#b-count")).to_be_enabled()
    page.click("#b-hold-button")  # no client chosen: the form says so, nothing is sent
    expect(page.locator("#b-problem")).to_have_text("Choose a client.")
    expect(page.locator("#b-client")).to_have_attribute("aria-invalid", "true")
    board.assert_readable()
    screenshot(page, "board-booking.png", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert sent == []


def test_therapist_sees_only_their_scope(board_server: BoardServer, page: Page) -> None:
    with board_server.api("therapist") as api:
        me = dropdown(api, "therapists")["therapists"]
        monday = monday_of(today_in(ORG_ZONE))
        week = week_from_api(api, monday, conflicts=True)
        forbidden = api.get(
            "/get-dropdown-data", params={"types": "therapists", "include_inactive": "true"}
        )
    assert forbidden.status_code == 403
    assert len(me) == 1
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["therapist"])
    expect(page.locator("#who")).to_have_text(f"Signed in as therapist {me[0]['full_name']}")

    placed = board.placed_sessions()
    assert set(placed) == {s["id"] for s in week["sessions"]}
    others = sorted(
        {s["therapist"]["full_name"] for s in week["sessions"] if s["therapist_id"] != me[0]["id"]}
    )
    assert board.row_names() == [me[0]["full_name"], *others]
    # Free slots (booking) only in the therapist's own row.
    assert {slot["therapist"] for slot in board.free_slots()} <= {me[0]["id"]}
    # The API sends a therapist no authorization data, and the page shows none.
    assert all("authorization" not in s for s in week["sessions"])
    expect(page.locator("body")).not_to_contain_text("units left")
    screenshot(page, "board-therapist.png")

    own = [s for s in week["sessions"] if s["therapist_id"] == me[0]["id"]]
    board.session_block(own[0]["id"]).click()
    dialog = page.locator("#session-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".details")).not_to_contain_text("Authorization")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    foreign = [
        s
        for s in week["sessions"]
        if s["therapist_id"] != me[0]["id"] and s["status"] == "scheduled"
    ]
    if (
        foreign
    ):  # a caseload client's session with a colleague: visible, not cancellable by this user
        board.session_block(foreign[0]["id"]).click()
        expect(dialog).to_be_visible()
        expect(dialog.locator("#s-cancel")).to_have_count(0)
        page.keyboard.press("Escape")


def test_sign_in_errors_remember_and_sign_out(board_server: BoardServer, page: Page) -> None:
    board = Board(page, board_server.url).open()
    page.fill("#token", "not-a-token")
    page.click("#sign-in-button")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error-text")).to_contain_text("Sign in again")
    expect(page.locator("#board")).to_be_hidden()

    page.fill("#token", "")
    page.click("#sign-in-button")
    expect(page.locator("#token")).to_have_attribute("aria-invalid", "true")

    token = board_server.tokens["admin"]
    board.sign_in(token, remember=True)
    assert board.storage() == {"local": {}, "session": {TOKEN_KEY: token}}
    shown = board.placed_sessions()
    a_client = next(iter(shown.values()))["text"].splitlines()[1]
    expect(page.locator("#grid")).to_contain_text(a_client)
    page.reload()
    expect(page.locator("#board")).to_be_visible()
    board.wait_loaded()

    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#board")).to_be_hidden()
    expect(page.locator("#grid > *")).to_have_count(0)
    assert board.storage() == {"local": {}, "session": {}}
    assert page.input_value("#token") == ""
    expect(page.locator("body")).not_to_contain_text(a_client)
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()


def test_loading_error_is_shown_and_recovers(board_server: BoardServer, page: Page) -> None:
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    outage = (
        '{"success": false, "error": "The database is unavailable; retry shortly",'
        ' "code": "DATABASE_UNAVAILABLE", "request_id": "e2e-outage", "details": {}}'
    )
    page.route(
        re.compile(r".*/get-schedule-data-batch.*"),
        lambda route: route.fulfill(status=503, body=outage, content_type="application/json"),
    )
    page.click("#next-week")
    expect(page.locator("#error-text")).to_have_text(
        "The database is unavailable; retry shortly (DATABASE_UNAVAILABLE, request e2e-outage)"
    )
    expect(page.locator("#grid")).to_have_attribute("aria-busy", "false")
    page.unroute(re.compile(r".*/get-schedule-data-batch.*"))
    board.click_and_wait("#next-week")
    expect(page.locator("#error")).to_be_hidden()
