"""The webhook event types (docs/WEBHOOKS.md): what an endpoint may subscribe to."""

from __future__ import annotations

# Every type an endpoint may subscribe to. The waitlist offers' types are part of the vocabulary so
# that endpoints can subscribe to them; the waitlist emits them (docs/WAITLIST.md).
EVENT_TYPES: tuple[str, ...] = (
    "session.created",
    "session.updated",
    "session.cancelled",
    "session.completed",
    "session.no_show",
    "session.reminder_due",
    "hold.created",
    "hold.released",
    "hold.expired",
    "waitlist.offer_created",
    "waitlist.offer_accepted",
    "waitlist.offer_expired",
    "authorization.low_units",
    "authorization.expiring",
)
