"""Typed errors of the booking endpoints (docs/BOOKING.md). Each has one stable code."""

from __future__ import annotations

from therapy_scheduler.errors import AppError, Conflict


class OutsideAvailability(Conflict):
    code = "OUTSIDE_AVAILABILITY"


class InsufficientBreak(Conflict):
    code = "INSUFFICIENT_BREAK"


class InsufficientTravelTime(Conflict):
    """Too little time to travel between two places (docs/BOOKING.md "Travel time")."""

    code = "INSUFFICIENT_TRAVEL_TIME"


class TherapistConflict(Conflict):
    code = "THERAPIST_CONFLICT"


class ClientConflict(Conflict):
    code = "CLIENT_CONFLICT"


class TherapistHoldConflict(Conflict):
    code = "THERAPIST_HOLD_CONFLICT"


class ClientHoldConflict(Conflict):
    code = "CLIENT_HOLD_CONFLICT"


class AuthorizationExhausted(Conflict):
    code = "AUTHORIZATION_EXHAUSTED"


class AuthorizationMissing(Conflict):
    code = "AUTHORIZATION_MISSING"


class SupervisionNotContained(Conflict):
    """A supervising session must lie within the session it supervises (docs/BOOKING.md)."""

    code = "SUPERVISION_NOT_CONTAINED"


class SupervisorCredentialRequired(Conflict):
    """Only a BCBA or BCaBA supervises (docs/DECISIONS.md "Supervision overlap")."""

    code = "SUPERVISOR_CREDENTIAL_REQUIRED"


class HoldLimitReached(Conflict):
    """The user already has as many active holds as the organization allows (a business rule, not a
    request rate: see docs/SECURITY.md)."""

    code = "HOLD_LIMIT_REACHED"


class HoldNotFound(AppError):
    status = 404
    code = "HOLD_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("No such hold (it may never have existed, or was purged)")


class HoldExpired(AppError):
    status = 410
    code = "HOLD_EXPIRED"


class HoldReleased(AppError):
    status = 410
    code = "HOLD_RELEASED"


class HoldAlreadyConfirmed(Conflict):
    code = "HOLD_ALREADY_CONFIRMED"


class HoldMismatch(Conflict):
    code = "HOLD_MISMATCH"


class OffsetMismatch(AppError):
    status = 400
    code = "OFFSET_MISMATCH"


class SessionNotCancellable(Conflict):
    code = "SESSION_NOT_CANCELLABLE"


class SessionNotReschedulable(Conflict):
    code = "SESSION_NOT_RESCHEDULABLE"


# The four slot conflicts by (who, what): the order in which they are checked.
SLOT_CONFLICTS: dict[tuple[str, str], type[Conflict]] = {
    ("therapist", "session"): TherapistConflict,
    ("client", "session"): ClientConflict,
    ("therapist", "hold"): TherapistHoldConflict,
    ("client", "hold"): ClientHoldConflict,
}


class WeeklyCapExceeded(Conflict):
    """An occurrence would take its authorized service over the payer's weekly cap (docs/BOOKING.md)."""

    code = "WEEKLY_CAP_EXCEEDED"
