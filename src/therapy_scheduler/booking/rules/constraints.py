"""The database's own no-double-booking guarantees, mapped to the same 409s the checks give.

The advisory locks make these unreachable in normal operation; if they ever fire (a bug, a manual
write, an expired hold not yet deactivated), the caller gets a clear conflict instead of a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError

from therapy_scheduler.booking.errors import (
    ClientConflict,
    ClientHoldConflict,
    TherapistConflict,
    TherapistHoldConflict,
)
from therapy_scheduler.errors import Conflict

_BY_CONSTRAINT: dict[str, type[Conflict]] = {
    "ex_sessions_therapist_overlap": TherapistConflict,
    "ex_sessions_client_overlap": ClientConflict,
    "ex_hold_occurrences_therapist_overlap": TherapistHoldConflict,
    "ex_hold_occurrences_client_overlap": ClientHoldConflict,
    # Migration 0006: an ordinary row and a supervising one of another code (docs/BOOKING.md).
    "ex_sessions_client_supervision": ClientConflict,
    "ex_hold_occurrences_client_supervision": ClientHoldConflict,
}


def constraint_name(exc: IntegrityError) -> str | None:
    """The violated constraint's name, from the driver's error (asyncpg) or its message."""
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    text = str(orig)
    return next((name for name in _BY_CONSTRAINT if name in text), None)


@asynccontextmanager
async def overlap_as_conflict() -> AsyncIterator[None]:
    """Turn an exclusion-constraint violation raised inside the block into its 409."""
    try:
        yield
    except IntegrityError as exc:
        error = _BY_CONSTRAINT.get(constraint_name(exc) or "")
        if error is None:
            raise
        raise error(
            "The slot was taken by a concurrent booking; pick another time",
            details={"constraint": constraint_name(exc), "alternatives": []},
        ) from exc
