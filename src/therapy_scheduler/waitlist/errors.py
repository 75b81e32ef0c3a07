"""Typed errors of the waitlist, each with its stable code (docs/WAITLIST.md)."""

from __future__ import annotations

from typing import Any

from therapy_scheduler.errors import AppError, Conflict, ValidationFailed


class OfferNotOpen(Conflict):
    code = "OFFER_NOT_OPEN"


class EntryHasOpenOffer(Conflict):
    code = "ENTRY_HAS_OPEN_OFFER"


class OfferExpired(AppError):
    status = 410
    code = "OFFER_EXPIRED"


def invalid(field: str, message: str, **extra: Any) -> ValidationFailed:
    """A 400 naming the field, in the shape every validation error of the service has."""
    return ValidationFailed(
        f"{field}: {message}", details={"fields": [{"field": field, "message": message}], **extra}
    )
