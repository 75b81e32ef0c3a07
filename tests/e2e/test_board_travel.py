"""Travel between places on the board in a real browser (docs/BOARD.md): a band between consecutive
sessions at different places, marked where `include_conflicts` says the trip does not fit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.e2e.board import ORG_ZONE, Board, monday_of, today_in, week_from_api
from tests.e2e.conftest import BoardServer, screenshot

pytestmark = pytest.mark.e2e


def test_travel_bands_match_the_travel_conflicts(board_server: BoardServer, page: Page) -> None:
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    monday = monday_of(today_in(ORG_ZONE))
    with board_server.api("admin") as api:
        week = week_from_api(api, monday, conflicts=True)
    placed = board.placed_sessions()
    bands: list[dict[str, str]] = board.grid.locator(".travel").evaluate_all(
        """els => els.map(e => ({
            short: e.dataset.travel,
            next: e.nextElementSibling.dataset.sessionId,
            text: e.innerText,
        }))"""
    )
    # The demo clinic's places have coordinates and its homes type defaults: travel shows.
    assert bands
    expected = {
        c["session_ids"][1]: c
        for c in week["conflicts"]
        if c["type"] == "insufficient_travel_time"
        and all(i in placed for i in c["session_ids"])
        and placed[c["session_ids"][0]]["date"] == placed[c["session_ids"][1]]["date"]
    }
    short = {b["next"]: b for b in bands if b["short"] == "short"}
    assert set(short) == set(expected)
    for session_id, conflict in expected.items():
        assert short[session_id]["text"] == (
            f"Travel {conflict['travel_minutes']} min, only {conflict['gap_minutes']} min between"
        )
    for band in bands:
        if band["short"] == "ok":
            assert re.fullmatch(r"Travel · \d+ min between places", band["text"])
    screenshot(page, "board-travel.png")
