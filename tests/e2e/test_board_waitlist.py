"""The board shows the waitlist (docs/BOARD.md, docs/WAITLIST.md) in Chromium: a session of a
therapist a client waits for is cancelled, its freed slot is offered, and the week that holds the
offer shows it as a dashed block in the therapist's row, with the waiting client's name and when the
offer lapses, and the summary line counts the open offers and the waiting clients as the API does."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.board import ORG_ZONE, Board, dropdown, monday_of, parse_instant, today_in
from tests.e2e.conftest import BoardServer, screenshot

pytestmark = pytest.mark.e2e

TZ = ZoneInfo(ORG_ZONE)


def _offer_made_by_a_cancel(server: BoardServer) -> dict[str, Any]:
    """Cancels upcoming sessions (2 to 13 days ahead) of the therapists clients wait for, until one
    cancellation's slot is offered; returns that offer as GET /waitlist/offers shows it."""
    today = today_in(ORG_ZONE)
    first, last = today + timedelta(days=2), today + timedelta(days=13)
    with server.api("admin") as api:
        entries = api.get("/waitlist", params={"limit": 200}).json()["data"]
        waited = list(dict.fromkeys(t for e in entries for t in e["therapist_ids"] or []))
        assert waited, "the demo clinic has clients waiting for named therapists"
        for therapist_id in waited:
            sessions = api.get(
                "/get-sessions-optimized",
                params={
                    "therapist_id": therapist_id,
                    "start_date": first.isoformat(),
                    "end_date": last.isoformat(),
                    "status": "scheduled",
                    "limit": 20,
                },
            ).json()["data"]["sessions"]
            for session in sessions:
                r = api.post(
                    "/sessions/cancel",
                    json={"session_id": session["id"], "reason": "client_illness"},
                )
                assert r.status_code == 200, r.text
                offer = _offer_for(api, r.json()["waitlist_offer_id"], session)
                if offer is not None:
                    return offer
    pytest.fail("no cancellation of a waited-for therapist's session was offered")


def _offer_for(api: Any, offer_id: str | None, session: dict[str, Any]) -> dict[str, Any] | None:
    """The open offer of the freed slot: the one the cancel named, or (when matching outlasted the
    cancel's wait) one that appears in the slot within a few seconds."""
    deadline = time.monotonic() + (0 if offer_id else 5)
    while True:
        offers = api.get(
            "/waitlist/offers",
            params={
                "start": session["start_time"],
                "end": session["end_time"],
                "therapist_id": session["therapist_id"],
            },
        ).json()["offers"]
        found = [o for o in offers if offer_id is None or o["id"] == offer_id]
        if found:
            return dict(found[0])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.3)


def _week_range(monday: date) -> dict[str, str]:
    """The range the board asks GET /waitlist/offers for: the week's days, a day wider each side."""
    return {
        "start": f"{(monday - timedelta(days=1)).isoformat()}T00:00:00Z",
        "end": f"{(monday + timedelta(days=8)).isoformat()}T00:00:00Z",
    }


def test_open_offer_block_and_waitlist_summary(board_server: BoardServer, page: Page) -> None:
    offer = _offer_made_by_a_cancel(board_server)
    start = parse_instant(offer["start_time"]).astimezone(TZ)
    weeks_ahead = (monday_of(start.date()) - monday_of(today_in(ORG_ZONE))).days // 7
    with board_server.api("admin") as api:
        clients = {c["id"]: c["full_name"] for c in dropdown(api, "clients")["clients"]}

    board = Board(page, board_server.url).open().sign_in(board_server.tokens["scheduler"])
    for _ in range(weeks_ahead):
        board.click_and_wait("#next-week")

    cell = board.grid.locator(
        f'[role=gridcell][data-therapist-id="{offer["therapist_id"]}"]'
        f'[data-date="{start.date().isoformat()}"]'
    )
    block = cell.locator(f'.block.offer[data-offer-id="{offer["id"]}"]')
    expect(block).to_be_visible()
    label = block.get_attribute("aria-label") or ""
    assert label.startswith("Waitlist offer "), label
    assert f"to {clients[offer['client_id']]}, open until " in label
    expect(block).to_contain_text(clients[offer["client_id"]])
    expect(block).to_contain_text("Waitlist offer · until ")

    with board_server.api("scheduler") as api:
        monday = monday_of(start.date())
        summary = api.get("/waitlist/offers", params=_week_range(monday)).json()
    assert offer["id"] in {o["id"] for o in summary["offers"]}
    # The cell's description for screen readers counts its offers.
    in_cell = [
        o
        for o in summary["offers"]
        if o["therapist_id"] == offer["therapist_id"]
        and parse_instant(o["start_time"]).astimezone(TZ).date() == start.date()
    ]
    counted = "1 waitlist offer" if len(in_cell) == 1 else f"{len(in_cell)} waitlist offers"
    expect(cell).to_have_attribute("aria-label", re.compile(rf"\b{counted}\b"))
    expect(page.locator("#summary")).to_contain_text(
        f" · {len(summary['offers'])} open waitlist offers · {summary['waiting']} waiting"
    )
    board.assert_readable("#grid")
    block.scroll_into_view_if_needed()
    screenshot(page, "board-waitlist-offer.png", full_page=False)
