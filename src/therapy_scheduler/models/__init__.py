"""ORM classes (tables) of therapy-scheduler, one module per aggregate."""

from therapy_scheduler.models.audit import AuditEvent, AuditEventClient
from therapy_scheduler.models.authorization import Authorization, AuthorizationService
from therapy_scheduler.models.availability import AvailabilityWindow, TimeOff
from therapy_scheduler.models.calendar_feed import CalendarFeed
from therapy_scheduler.models.hold import Hold, HoldOccurrence
from therapy_scheduler.models.idempotency import IdempotencyRecord
from therapy_scheduler.models.organization import Organization
from therapy_scheduler.models.people import Caseload, Client, Location, Therapist, User
from therapy_scheduler.models.session import MAX_SESSION_LENGTH, Cancellation, Session
from therapy_scheduler.models.waitlist import FreedSlot, WaitlistEntry, WaitlistOffer

__all__ = [
    "MAX_SESSION_LENGTH",
    "AuditEvent",
    "AuditEventClient",
    "Authorization",
    "AuthorizationService",
    "AvailabilityWindow",
    "CalendarFeed",
    "Cancellation",
    "Caseload",
    "Client",
    "FreedSlot",
    "Hold",
    "HoldOccurrence",
    "IdempotencyRecord",
    "Location",
    "Organization",
    "Session",
    "Therapist",
    "TimeOff",
    "User",
    "WaitlistEntry",
    "WaitlistOffer",
]
