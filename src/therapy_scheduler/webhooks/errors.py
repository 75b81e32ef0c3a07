"""The webhook feature's errors, each with a stable code."""

from __future__ import annotations

from therapy_scheduler.errors import NotFound, ValidationFailed


def invalid(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    """A 400 VALIDATION_ERROR naming the field, shaped like the request-validation ones."""
    return ValidationFailed(
        f"Invalid request: {field}: {message}",
        details={"fields": [{"field": field, "message": message, "type": type_}]},
    )


class WebhookNotFound(NotFound):
    code = "NOT_FOUND"

    def __init__(self, kind: str = "webhook endpoint") -> None:
        super().__init__(f"{kind.capitalize()} not found", details={"entity": kind})
