"""SQL of the booking side (SQLAlchemy Core), every query bounded by person and time range:
`calendar` (what a booking is checked against), `holds`, `sessions`."""

from therapy_scheduler.booking.queries.calendar import (
    Busy,
    Coverage,
    approved_authorizations,
    busy_between,
    location,
    people,
)
from therapy_scheduler.booking.queries.holds import (
    HOLD_COLUMNS,
    Held,
    HeldSlot,
    active_holds_of,
    close_hold,
    deactivate_expired_holds,
    hold_by_key,
    hold_occurrences,
    hold_to_confirm,
    insert_hold,
    insert_hold_occurrences,
)
from therapy_scheduler.booking.queries.sessions import (
    SESSION_COLUMNS,
    series_members,
    session_for_change,
)

__all__ = [
    "HOLD_COLUMNS",
    "SESSION_COLUMNS",
    "Busy",
    "Coverage",
    "Held",
    "HeldSlot",
    "active_holds_of",
    "approved_authorizations",
    "busy_between",
    "close_hold",
    "deactivate_expired_holds",
    "hold_by_key",
    "hold_occurrences",
    "hold_to_confirm",
    "insert_hold",
    "insert_hold_occurrences",
    "location",
    "people",
    "series_members",
    "session_for_change",
]
