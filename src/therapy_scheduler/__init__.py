"""therapy-scheduler: the scheduling backend of a behavioural-therapy practice."""

from therapy_scheduler.infra.sqlite_library import stop_allocation_statistics

__version__ = "0.1.0"

# Before any of our modules imports `sqlite3` (which starts the library): SQLite's reader threads
# then allocate without taking turns at one process-wide mutex (infra/sqlite_library.py).
stop_allocation_statistics()
