"""The JSON envelope of every answer (success and error) and the fast JSON response (orjson)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


def error_body(
    *, code: str, message: str, request_id: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "success": False,
        "error": message,
        "code": code,
        "request_id": request_id,
        "details": details or {},
    }


def ok(**fields: Any) -> dict[str, Any]:
    """The success envelope of every answer: `{"success": true, …fields}` (docs/API.md)."""
    return {"success": True, **fields}
