"""`--phi-scan`: every log record the whole test suite emits, at DEBUG and from every library, is checked
for the fixture clinic's personal data (names, emails, phones, clinical notes) and for bearer tokens.
Any hit fails the run at the end, with the logger, the test and the kind of data (never the data itself).

Works under xdist: each worker scans its own records and reports to the controller, which decides.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import clinic_document

# The test suite's own HTTP client logs the URLs the tests send (test input, not service output).
CLIENT_LOGGERS = ("httpx", "httpcore")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def phi_needles() -> dict[str, str]:
    """{text: kind} for every personal value of the fixture clinic."""
    doc = clinic_document()
    needles: dict[str, str] = {}
    for group in ("therapists", "clients", "users"):
        for person in doc[group]:
            for key, kind in (("full_name", "name"), ("email", "email"), ("phone", "phone")):
                if person.get(key):
                    needles[person[key]] = f"{group[:-1]} {kind}"
            if person.get("date_of_birth"):
                needles[person["date_of_birth"]] = "client date of birth"
    for session in doc["sessions"]:
        if session.get("notes"):
            needles[session["notes"]] = "session notes"
    return needles


def scan_text(text: str, needles: dict[str, str]) -> list[str]:
    """The kinds of personal data found in `text` (empty when clean)."""
    found = [kind for needle, kind in needles.items() if needle in text]
    if JWT.search(text):
        found.append("bearer token")
    return found


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage()]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    return "\n".join(parts)


class PHIScanHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.needles = phi_needles()
        self.records = 0
        self.hits: list[dict[str, Any]] = []
        self.current_test = "(collection)"

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_LOGGERS):
            return
        self.records += 1
        try:
            kinds = scan_text(record_text(record), self.needles)
        except Exception:  # a record that cannot even be formatted is not our concern here
            return
        if kinds:
            self.hits.append(
                {
                    "logger": record.name,
                    "level": record.levelname,
                    "test": self.current_test,
                    "kinds": sorted(set(kinds)),
                }
            )


_HANDLER_KEY = pytest.StashKey[PHIScanHandler]()
_DIR_ENV = "THERAPY_SCHEDULER_PHI_SCAN_DIR"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--phi-scan",
        action="store_true",
        help="log at DEBUG everywhere and fail the run if any log record holds fixture PHI or a token",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--phi-scan"):
        return
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        directory = tempfile.mkdtemp(prefix="phi-scan-")
        os.environ[_DIR_ENV] = directory  # inherited by xdist workers
    handler = PHIScanHandler()
    config.stash[_HANDLER_KEY] = handler
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    handler = item.config.stash.get(_HANDLER_KEY, None)
    if handler is not None:
        handler.current_test = item.nodeid
        # Fixtures such as caplog may lower the root level or detach handlers; put ours back.
        root = logging.getLogger()
        if handler not in root.handlers:
            root.addHandler(handler)
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    handler = config.stash.get(_HANDLER_KEY, None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    directory = Path(os.environ[_DIR_ENV])
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    report = {"records": handler.records, "hits": handler.hits}
    (directory / f"{worker}.json").write_text(json.dumps(report))
    if hasattr(config, "workerinput"):
        return
    records, hits = 0, []
    for path in sorted(directory.glob("*.json")):
        part = json.loads(path.read_text())
        records += part["records"]
        hits += part["hits"]
    config.stash[_RESULT_KEY] = (records, hits)
    if hits and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_RESULT_KEY = pytest.StashKey[tuple[int, list[dict[str, Any]]]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    result = config.stash.get(_RESULT_KEY, None)
    if result is None:
        return
    records, hits = result
    terminalreporter.write_sep("=", "PHI log scan")
    terminalreporter.write_line(
        f"PHI scan: {records} log records scanned, {len(hits)} holding personal data or tokens"
    )
    if hits:
        terminalreporter.write_line(
            "PHI scan FAILED: personal data or tokens reached the logs", red=True
        )
    for hit in hits[:50]:
        terminalreporter.write_line(
            f"  {hit['level']} {hit['logger']} in {hit['test']}: {', '.join(hit['kinds'])}"
        )
