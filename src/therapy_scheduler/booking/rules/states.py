"""The session state machine (docs/BOOKING.md) in one table: which action takes which status where.

Every service that changes a session's status asks this table; nothing else decides what is allowed.
"""

from __future__ import annotations

from therapy_scheduler.errors import Conflict

# (current status, action) -> new status. `reschedule` moves a scheduled session in time (status kept);
# `cancel` has its own endpoint and error code (SESSION_NOT_CANCELLABLE, from the contract).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("scheduled", "start"): "in_progress",
    ("scheduled", "complete"): "completed",
    ("in_progress", "complete"): "completed",
    ("scheduled", "no_show"): "no_show",
    ("scheduled", "cancel"): "cancelled",
    ("in_progress", "cancel"): "cancelled",
    ("cancelled", "reactivate"): "scheduled",
    ("scheduled", "reschedule"): "scheduled",
}

STATUSES = ("scheduled", "in_progress", "completed", "cancelled", "no_show")

# Statuses whose session spends its authorization units (a late cancellation under a policy that keeps
# units is the one exception, recorded on the row as `consumes_units`).
CONSUMING = frozenset({"scheduled", "in_progress", "completed"})


def target(status: str, action: str) -> str | None:
    """The status `action` leads to from `status`, or None when the table does not allow it."""
    return TRANSITIONS.get((status, action))


def sources(action: str) -> frozenset[str]:
    """Every status from which `action` is allowed."""
    return frozenset(s for (s, a) in TRANSITIONS if a == action)


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class SessionInPast(Conflict):
    code = "SESSION_IN_PAST"


def refuse(session_id: object, status: str, action: str, wanted: str) -> InvalidTransition:
    return InvalidTransition(
        f"A {status} session cannot be moved to {wanted} ({action})",
        details={
            "session_id": str(session_id),
            "from": status,
            "to": wanted,
            "action": action,
            "allowed_from": sorted(sources(action)),
        },
    )
