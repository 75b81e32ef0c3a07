"""The process's garbage collector, tuned for a server (docs/DECISIONS.md, "The hot read path").

After startup the heap holds a few hundred thousand long-lived objects (modules, FastAPI's routes
and Pydantic's schemas, SQLAlchemy's tables and compiled statements). CPython's full collection
walks all of them, and a request that reads a few thousand rows (a week of the schedule) allocates
enough to trigger one every few requests: that walk cost more than the week's own arithmetic.
`settle` moves what exists at startup out of the collector's sight (`gc.freeze`), and collects the
young generation less often: a request's objects mostly die by reference counting before any
collection sees them. `release` gives the frozen objects back at shutdown (tests start many apps
in one process)."""

from __future__ import annotations

import gc

# Allocations (net of deallocations) between collections of the youngest generation, and how many of
# those between collections of the middle one (CPython's defaults: 700 and 10); the oldest keeps its
# default (10).
YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20

_default = gc.get_threshold()


def settle() -> None:
    """Once the app has started: freeze the startup heap, collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, _default[2])


def release() -> None:
    """At shutdown: back to the collector's defaults, the frozen objects collectable again."""
    gc.set_threshold(*_default)
    gc.unfreeze()
