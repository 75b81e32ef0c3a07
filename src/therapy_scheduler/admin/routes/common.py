"""What every admin route module shares: the caller's context and the documented error statuses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from therapy_scheduler.admin.common import AdminContext, admin_context
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.openapi import error_responses

Ctx = Annotated[AdminContext, Depends(admin_context)]
Out = dict[str, Any]
READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 413, 415)
CREATE = error_responses(
    400, 401, 403, 404, 409, 413, 415, 422, s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)"
)
USER_WRITE = error_responses(
    400, 401, 403, 404, 409, 413, 415, s409="EMAIL_TAKEN, THERAPIST_ALREADY_LINKED or SELF_LOCKOUT"
)
USER_CREATE = error_responses(
    400,
    401,
    403,
    404,
    409,
    413,
    415,
    422,
    s409="EMAIL_TAKEN, THERAPIST_ALREADY_LINKED, SELF_LOCKOUT or IDEMPOTENCY_IN_PROGRESS",
)


def one(record: Out) -> Out:
    """The envelope of an answer that is one record."""
    return ok(data=record)
