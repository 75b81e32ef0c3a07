"""Typed application errors. Services raise them; one handler turns them into the error envelope."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(AppError):
    status = 400
    code = "VALIDATION_ERROR"


class LimitExceeded(AppError):
    status = 400
    code = "LIMIT_EXCEEDED"


class InvalidJSON(AppError):
    status = 400
    code = "INVALID_JSON"


class InvalidCursor(AppError):
    status = 400
    code = "INVALID_CURSOR"


class Unauthorized(AppError):
    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str = "A valid bearer token is required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    code = "FORBIDDEN"


class NotFound(AppError):
    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(AppError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(AppError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(AppError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(AppError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimited(AppError):
    status = 429
    code = "RATE_LIMITED"


class DatabaseUnavailable(AppError):
    status = 503
    code = "DATABASE_UNAVAILABLE"

    def __init__(self, message: str = "The database is unavailable; retry shortly") -> None:
        super().__init__(message, headers={"Retry-After": "2"})


class InternalError(AppError):
    status = 500
    code = "INTERNAL_ERROR"
