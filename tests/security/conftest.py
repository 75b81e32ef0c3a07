"""Measurements of the security tests (fuzz counts, outage timings), printed at the end of the run.

Tests record them with `record_property("measurement", "...")`; the properties travel from xdist
workers to the controller with the test reports."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [
        f"{report.nodeid}: {value}"
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", [])
        if key == "measurement"
    ]
    if lines:
        terminalreporter.write_sep("=", "security measurements")
        for line in sorted(lines):
            terminalreporter.write_line(line)
