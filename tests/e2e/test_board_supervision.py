"""Supervision on the board in a real browser (docs/BOARD.md): a BCBA's 97155 inside an RBT's 97153 of
the same client is marked on both blocks and in the session dialog; cancelling the 97153 from the
board says that the supervision now stands alone, and the week shows it flagged."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.board import ORG_ZONE, Board, monday_of, supervisions, today_in, week_from_api
from tests.e2e.conftest import BoardServer, screenshot

pytestmark = pytest.mark.e2e


def test_supervision_is_marked_and_its_cancelled_session_flagged(
    board_server: BoardServer, page: Page
) -> None:
    board = Board(page, board_server.url).open().sign_in(board_server.tokens["admin"])
    monday = monday_of(today_in(ORG_ZONE))
    with board_server.api("admin") as api:
        week = week_from_api(api, monday)
        if not supervisions(week["sessions"]):
            # The demo books its supervisions in the coming days: maybe all in next week.
            monday += timedelta(weeks=1)
            week = week_from_api(api, monday)
            board.click_and_wait("#next-week")
    pairs = supervisions(week["sessions"])
    assert pairs, "the demo clinic books supervision sessions in the coming week"
    for outer, inner in pairs:
        assert (outer["service_code"], inner["service_code"]) == ("97153", "97155")

    by_outer: dict[str, list[str]] = defaultdict(list)
    for outer, inner in sorted(pairs, key=lambda p: p[1]["start_time"]):
        by_outer[outer["id"]].append(inner["id"])
    # Every supervision, and nothing else, is marked on both blocks.
    supervising = board.grid.locator(".block.session.supervising")
    supervised = board.grid.locator(".block.session.supervised")
    expect(supervising).to_have_count(len(pairs))
    marks: dict[str, str] = dict(
        supervising.evaluate_all("els => els.map(e => [e.dataset.sessionId, e.dataset.supervises])")
    )
    assert marks == {inner["id"]: outer["id"] for outer, inner in pairs}
    assert set(supervised.evaluate_all("els => els.map(e => e.dataset.sessionId)")) == {
        outer["id"] for outer, _ in pairs
    }
    for outer, inner in pairs:
        expect(board.session_block(inner["id"]).locator(".block-supervision")).to_have_text(
            f"Supervises {outer['therapist']['full_name']}'s 97153 ("
            + board.session_block(outer["id"]).locator(".block-time").inner_text()
            + ")"
        )
        expect(board.session_block(outer["id"])).to_have_attribute(
            "data-supervised-by", " ".join(by_outer[outer["id"]])
        )
        expect(board.session_block(outer["id"]).locator(".block-supervision")).to_contain_text(
            f"Supervised by {inner['therapist']['full_name']}"
        )
        label = board.session_block(inner["id"]).get_attribute("aria-label") or ""
        assert f"Supervises {outer['therapist']['full_name']}'s 97153" in label
    board.assert_readable("#grid")

    # The docs' picture: one client's week, the RBT's 97153 and the BCBA's 97155 inside it.
    outer, inner = pairs[0]
    board.select_and_wait("#f-client", outer["client_id"])
    expect(board.session_block(inner["id"])).to_have_class(re.compile(r"\bsupervising\b"))
    rows = [
        board.grid.locator(f'[role=row][data-therapist-id="{s["therapist_id"]}"]').bounding_box()
        for s in (inner, outer)
    ]
    header = board.grid.locator(".grid-head").bounding_box()
    assert header is not None
    assert all(rows)
    top = min(header["y"], *(r["y"] for r in rows if r))
    bottom = max(r["y"] + r["height"] for r in rows if r)
    screenshot(
        page,
        "board-supervision.png",
        clip={"x": header["x"], "y": top, "width": header["width"], "height": bottom - top},
    )

    # The supervised session's dialog says who supervises it.
    board.session_block(outer["id"]).click()
    dialog = page.locator("#session-dialog")
    expect(dialog.locator('dd[data-field="Supervision"]')).to_contain_text(
        f"Supervised by {inner['therapist']['full_name']}"
    )
    # Cancelled from the board: the supervision stays, the result says it stands alone …
    page.select_option("#s-reason", index=1)
    page.click("#s-cancel")
    warning = dialog.locator('#s-result p.warning[data-code="SUPERVISION_UNSUPPORTED"]')
    expect(warning).to_contain_text("A supervision now stands alone")
    page.click("#s-close")
    board.wait_loaded()
    # … and the week flags it, no longer marked as supervising anything.
    block = board.session_block(inner["id"])
    expect(block).to_have_class(re.compile(r"\bhas-conflict\b"))
    expect(block).not_to_have_class(re.compile(r"\bsupervising\b"))
    expect(block.locator(".block-flag")).to_contain_text("Supervision stands alone")
    with board_server.api("admin") as api:
        after = week_from_api(api, monday, client_ids=[outer["client_id"]], conflicts=True)
    assert [
        c["session_ids"] for c in after["conflicts"] if c["type"] == "supervision_unsupported"
    ] == [[inner["id"]]]
