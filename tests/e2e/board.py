"""Driving the board page, and asking the API what the page should show."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Locator, Page, expect

ORG_ZONE = "America/New_York"  # the demo clinic's zone


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def week_from_api(
    api: httpx.Client,
    monday: date,
    *,
    therapist_ids: list[str] | None = None,
    client_ids: list[str] | None = None,
    time_zone: str | None = None,
    availability: bool = False,
    conflicts: bool = False,
) -> dict[str, Any]:
    """Every session of the week (all batches), plus availability/conflicts when asked."""
    params: dict[str, Any] = {
        "start_date": monday.isoformat(),
        "end_date": (monday + timedelta(days=6)).isoformat(),
        "batch_size": 500,
        "include_availability": str(availability).lower(),
        "include_conflicts": str(conflicts).lower(),
    }
    if therapist_ids:
        params["therapist_ids"] = ",".join(therapist_ids)
    if client_ids:
        params["client_ids"] = ",".join(client_ids)
    if time_zone:
        params["time_zone"] = time_zone
    sessions: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    offset = 0
    while True:
        response = api.get("/get-schedule-data-batch", params={**params, "offset": offset})
        assert response.status_code == 200, response.text
        body = response.json()
        first = first or body
        sessions += body["data"]["sessions"]
        if not body["data"]["pagination"]["has_more"]:
            break
        offset = body["data"]["pagination"]["next_offset"]
    assert first is not None
    return {
        "sessions": sessions,
        "availability": first["data"].get("availability", []),
        "conflicts": first["data"].get("conflicts", []),
    }


def supervisions(sessions: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(supervised, supervising) pairs of a week: live sessions of one client, with two therapists,
    the second lying within the first (the API lets a client's sessions overlap only so)."""
    live = [s for s in sessions if s["status"] != "cancelled"]
    return [
        (outer, inner)
        for outer in live
        for inner in live
        if inner["client_id"] == outer["client_id"]
        and inner["therapist_id"] != outer["therapist_id"]
        and parse_instant(outer["start_time"]) <= parse_instant(inner["start_time"])
        and parse_instant(inner["end_time"]) <= parse_instant(outer["end_time"])
        and inner["id"] != outer["id"]
    ]


def dropdown(api: httpx.Client, types: str) -> dict[str, Any]:
    response = api.get("/get-dropdown-data", params={"types": types})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


class Board:
    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.grid = page.locator("#grid")

    def open(self) -> Board:
        self.page.goto(f"{self.url}/board")
        expect(self.page.locator("#sign-in-title")).to_be_visible()
        return self

    def sign_in(self, token: str, *, remember: bool = False) -> Board:
        self.page.fill("#token", token)
        if remember:
            self.page.check("#remember")
        self.page.click("#sign-in-button")
        expect(self.page.locator("#board")).to_be_visible()
        self.wait_loaded()
        return self

    def wait_loaded(self) -> None:
        expect(self.grid).to_have_attribute("aria-busy", "false")
        expect(self.page.locator("#summary")).not_to_be_empty()

    def click_and_wait(self, selector: str) -> None:
        self.page.click(selector)
        self.wait_loaded()

    def select_and_wait(self, selector: str, value: str) -> None:
        self.page.select_option(selector, value)
        self.wait_loaded()

    def week_title(self) -> str:
        return self.page.locator("#week-title").inner_text()

    def placed_sessions(self) -> dict[str, dict[str, str]]:
        """Session id → the row (therapist id) and column (date) of the cell its block is in."""
        rows: list[dict[str, str]] = self.grid.locator(".block.session").evaluate_all(
            """els => els.map(e => ({
                id: e.dataset.sessionId,
                status: e.dataset.status,
                therapist: e.closest('[role=gridcell]').dataset.therapistId,
                date: e.closest('[role=gridcell]').dataset.date,
                text: e.innerText,
                conflict: e.classList.contains('has-conflict') ? 'yes' : 'no',
            }))"""
        )
        return {r["id"]: r for r in rows}

    def free_slots(self) -> list[dict[str, str]]:
        slots: list[dict[str, str]] = self.grid.locator(".block.free").evaluate_all(
            """els => els.map(e => ({
                start: e.dataset.start,
                end: e.dataset.end,
                therapist: e.closest('[role=gridcell]').dataset.therapistId,
                date: e.closest('[role=gridcell]').dataset.date,
            }))"""
        )
        return slots

    def row_names(self) -> list[str]:
        names: list[str] = self.grid.locator(".therapist-name").all_inner_texts()
        return names

    def session_block(self, session_id: str) -> Locator:
        return self.grid.locator(f'.block.session[data-session-id="{session_id}"]')

    def slot_block(self, therapist_id: str, start: str) -> Locator:
        return self.grid.locator(
            f'[role=gridcell][data-therapist-id="{therapist_id}"] .block.free[data-start="{start}"]'
        )

    def assert_readable(self, selector: str = "body") -> None:
        """No JavaScript placeholder ever reaches the user."""
        text = self.page.locator(selector).inner_text()
        assert not re.findall(r"\bnull\b|\bundefined\b|\bNaN\b|\[object ", text), text

    def storage(self) -> dict[str, Any]:
        stored: dict[str, Any] = self.page.evaluate(
            "() => ({local: {...localStorage}, session: {...sessionStorage}})"
        )
        return stored
