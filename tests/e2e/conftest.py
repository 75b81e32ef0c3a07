"""Browser tests of the schedule board: the real service in a subprocess (SQLite demo clinic), driven
in headless Chromium through Playwright.

Skipped when Chromium or Playwright is missing (the run ends with one line counting the tests skipped
for want of Chromium and how to install it: tests/conftest.py), except under CI=true, where `.ci/run`
installs both and their absence is a failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.conftest import CHROMIUM_INSTALL, CHROMIUM_MISSING, IN_CI
from therapy_scheduler.models import User

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("THERAPY_SCHEDULER_CHROMIUM", "/usr/bin/chromium")
# Launch flags this machine needs: no sandbox as root, no GPU, and no background traffic to hosts the
# closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLI = str(Path(sys.executable).with_name("therapy-scheduler"))
ADMIN_EMAIL = "admin@demo.brightsteps.example"
SCHEDULER_EMAIL = "scheduler@demo.brightsteps.example"
# Set to a folder (e.g. docs/screenshots) to save screenshots of the board while the tests run.
SCREENSHOTS = os.environ.get("THERAPY_SCHEDULER_BOARD_SCREENSHOTS")


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM_MISSING} {CHROMIUM} ({CHROMIUM_INSTALL})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def _require_browser() -> None:
    problem = _missing_browser()
    if problem:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium and Playwright under CI=true: {problem}")
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BoardServer:
    """`therapy-scheduler serve` on a free port against its own SQLite demo clinic."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_path = root / "demo.db"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "THERAPY_SCHEDULER_DATABASE_URL": f"sqlite:///{self.db_path}",
            "THERAPY_SCHEDULER_ENVIRONMENT": "development",
            "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
            "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
            "THERAPY_SCHEDULER_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}
        self.emails: dict[str, str] = {}

    def _cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own console script
            [CLI, *args], env=self.env, capture_output=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"therapy-scheduler {args[0]} failed: {done.stderr.decode()[-2000:]}"
            )
        return done.stdout.decode()

    def start(self) -> BoardServer:
        self._cli(
            "demo-data", "--therapists", "6", "--clients", "20", "--weeks", "4", "--seed", "7"
        )
        engine = create_engine(f"sqlite:///{self.db_path}")
        with engine.connect() as conn:
            therapist_email = conn.execute(
                select(User.email)
                .where(User.role == "therapist", User.is_active.is_(True))
                .order_by(User.email)
                .limit(1)
            ).scalar_one()
        engine.dispose()
        self.emails = {
            "admin": ADMIN_EMAIL,
            "scheduler": SCHEDULER_EMAIL,
            "therapist": therapist_email,
        }
        for role, email in self.emails.items():
            self.tokens[role] = self._cli("token", "--email", email).strip()
        log = (self.root / "serve.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {(self.root / 'serve.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
        )


@pytest.fixture(scope="session")
def board_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoardServer]:
    """One server per test process. The booking tests book from three weeks ahead, where the read
    tests never look, and every test asks the API for its expectations just before it compares."""
    _require_browser()
    server = BoardServer(tmp_path_factory.mktemp("board"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A fresh Playwright driver and Chromium per test. Per test, not per session: between its calls
    the sync API leaves its event loop marked as running in this thread, which would break the
    asyncio tests that share this worker process."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """Uncaught errors and Content-Security-Policy violations seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message: Any) -> None:
        text = str(message.text)
        # A refused request is logged by Chromium as "Failed to load resource"; the page shows its
        # own message for those. Anything else at error level is a bug of the page.
        if message.type == "error" and not text.startswith("Failed to load resource"):
            self.errors.append(f"console: {text}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1500, "height": 1000}, locale="en-US", timezone_id="America/Chicago"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.console)
    page.on("pageerror", lambda error: problems.errors.append(f"pageerror: {error}"))
    yield page
    context.close()
    assert problems.errors == []


def screenshot(
    page: Page, name: str, *, full_page: bool = True, clip: dict[str, float] | None = None
) -> None:
    """Saved only when THERAPY_SCHEDULER_BOARD_SCREENSHOTS names a folder; `clip` (x, y, width,
    height in page pixels) saves that part of the page."""
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        if clip is not None:
            page.screenshot(path=str(folder / name), full_page=True, clip=clip)  # type: ignore[arg-type]
        else:
            page.screenshot(path=str(folder / name), full_page=full_page)
