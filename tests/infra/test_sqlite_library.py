"""SQLite's allocation statistics are off in a process that imports the service before `sqlite3`
(infra/sqlite_library.py): the library then keeps no count of the memory it uses. Each case runs in
a fresh interpreter, since the setting is the library's, for the whole process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the setting is made on Linux only")

_USE_SQLITE = """
import ctypes, sqlite3
connection = sqlite3.connect(":memory:")
connection.execute("CREATE TABLE t (x)")
connection.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
library = ctypes.CDLL("libsqlite3.so.0")
library.sqlite3_memory_used.restype = ctypes.c_int64
print(library.sqlite3_memory_used())
"""


def _memory_counted(first: str) -> int:
    """What SQLite says it has allocated after some use, in a process that runs `first` first."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", first + _USE_SQLITE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip())


def test_the_service_starts_sqlite_without_allocation_statistics() -> None:
    assert _memory_counted("import therapy_scheduler.cli\n") == 0


def test_sqlite_started_before_the_service_keeps_them() -> None:
    # The same library instance counts: the check above reads the one Python's sqlite3 uses.
    assert _memory_counted("import sqlite3\nimport therapy_scheduler.cli\n") > 0


def test_the_setting_is_made_once_and_refused_after_the_start() -> None:
    from therapy_scheduler.infra.sqlite_library import stop_allocation_statistics

    # This process has imported sqlite3 already (the suite uses it): nothing is attempted.
    assert "_sqlite3" in sys.modules
    assert stop_allocation_statistics() is False
