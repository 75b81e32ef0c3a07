"""OpenAPI declarations of the error envelope, so every endpoint documents the codes it can return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: str
    code: str
    request_id: str | None
    details: dict[str, Any]


_DESCRIPTIONS = {
    400: "Invalid input (VALIDATION_ERROR, INVALID_JSON, INVALID_CURSOR, LIMIT_EXCEEDED, "
    "NONEXISTENT_LOCAL_TIME, OFFSET_MISMATCH)",
    401: "Missing, invalid or expired token, or unknown/inactive user (UNAUTHORIZED)",
    403: "The caller may see the object but not do this (FORBIDDEN)",
    404: "Not found, or not visible to the caller (NOT_FOUND, HOLD_NOT_FOUND)",
    409: "Conflict (see the endpoint's codes)",
    410: "The hold has expired (HOLD_EXPIRED)",
    413: "Request body too large (PAYLOAD_TOO_LARGE)",
    415: "Request body is not JSON (UNSUPPORTED_MEDIA_TYPE)",
    422: "Idempotency-Key reused with another body (IDEMPOTENCY_KEY_REUSED)",
    429: "Too many requests (RATE_LIMITED), see Retry-After",
    503: "Database unavailable (DATABASE_UNAVAILABLE), see Retry-After",
}


def error_responses(*statuses: int, **overrides: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the given statuses plus those every endpoint can return."""
    every = (429, 500, 503)
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *every}):
        description = overrides.get(f"s{status}") or _DESCRIPTIONS.get(
            status, "Internal error (INTERNAL_ERROR)"
        )
        out[status] = {"model": ErrorEnvelope, "description": description}
    return out


def ok_response(
    model: type[BaseModel], description: str = "Success"
) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry declaring the shape of a route's 200 answer."""
    return {200: {"model": model, "description": description}}


_ETAG_HEADER = {
    "ETag": {
        "description": "Weak entity tag of the answer: send it back in If-None-Match",
        "schema": {"type": "string"},
    }
}


def conditional_ok_response(
    model: type[BaseModel], description: str = "Success"
) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries of a read with conditional requests (docs/API.md, "Conditional
    requests"): the 200 answer with its `ETag`, and the bodiless 304 for a matching
    `If-None-Match`."""
    return {
        200: {"model": model, "description": description, "headers": _ETAG_HEADER},
        304: {
            "description": "Not Modified: the If-None-Match tag still stands for the answer "
            "(no body; keep showing what you have)",
            "headers": _ETAG_HEADER,
        },
    }
