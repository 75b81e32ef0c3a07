"""SQLite's allocation statistics switched off for the process, before Python's `sqlite3` starts
the library (docs/DECISIONS.md, "SQLite without allocation statistics").

SQLite counts every allocation under one process-wide mutex by default (`SQLITE_CONFIG_MEMSTATUS`),
so the reader threads of a worker (aiosqlite runs each pooled connection in a thread of its own)
take turns at every malloc and free of their statements: two threads running the session list's
page statement together did no more than one alone. Nothing of ours reads the statistics (they
serve `sqlite3_memory_used` and the soft heap limit).

The library takes the setting only before it is initialized, which Python's `sqlite3` does when it
is first imported; `therapy_scheduler/__init__.py` therefore calls `stop_allocation_statistics()`
before any of our modules imports it. In a program that imported `sqlite3` before ours, the library
keeps its default and nothing else changes. Linux only: there Python's `sqlite3` uses the system's
shared library, which loading it by its name finds again (the same instance), and `sqlite3_config`,
a variadic C function, takes its integer argument as ctypes passes it.
"""

from __future__ import annotations

import ctypes
import sys

_SQLITE_CONFIG_MEMSTATUS = 9
_SQLITE_OK = 0
_LIBRARY = "libsqlite3.so.0"


def stop_allocation_statistics() -> bool:
    """Turn SQLite's allocation statistics off if the library has not been started yet; whether
    the library took the setting."""
    if sys.platform != "linux" or "_sqlite3" in sys.modules:
        return False
    try:
        library = ctypes.CDLL(_LIBRARY)
    except OSError:
        return False
    result: int = library.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0))
    return result == _SQLITE_OK
