"""ORM classes (tables) of therapy-scheduler, one module per aggregate."""

from therapy_scheduler.models.audit import AuditEvent
from therapy_scheduler.models.authorization import Authorization, AuthorizationService
from therapy_scheduler.models.availability import AvailabilityWindow, TimeOff
from therapy_scheduler.models.calendar_feed import CalendarFeed
from therapy_scheduler.models.change_counter import ChangeCounter
from therapy_scheduler.models.hold import Hold, HoldOccurrence
from therapy_scheduler.models.idempotency import IdempotencyRecord
from therapy_scheduler.models.organization import Organization
from therapy_scheduler.models.people import (
    Caseload,
    Client,
    Location,
    LocationTravel,
    Therapist,
    User,
)
from therapy_scheduler.models.session import MAX_SESSION_LENGTH, Cancellation, Session
from therapy_scheduler.models.waitlist import FreedSlot, WaitlistEntry, WaitlistOffer
from therapy_scheduler.models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from therapy_scheduler.models.write_position import FLOOR_KEY, UserWritePosition

__all__ = [
    "FLOOR_KEY",
    "MAX_SESSION_LENGTH",
    "AuditEvent",
    "Authorization",
    "AuthorizationService",
    "AvailabilityWindow",
    "CalendarFeed",
    "Cancellation",
    "Caseload",
    "ChangeCounter",
    "Client",
    "FreedSlot",
    "Hold",
    "HoldOccurrence",
    "IdempotencyRecord",
    "Location",
    "LocationTravel",
    "Organization",
    "Session",
    "Therapist",
    "TimeOff",
    "User",
    "UserWritePosition",
    "WaitlistEntry",
    "WaitlistOffer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
