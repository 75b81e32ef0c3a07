"""`Idempotency-Key` on the admin API's POST routes, through the shared `infra/idempotency.py`.

The admin services run their own transaction (`AdminContext.write`), so the response is stored right
after it commits rather than inside it: if the process died in between, the claim goes stale after
60 s and a retry with the same key runs again (creates take client-chosen or fresh ids; a retried
create with the same explicit id then answers 409/200 as the service decides).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from therapy_scheduler.admin.common import AdminContext
from therapy_scheduler.infra.idempotency import Finalize, run_idempotent


async def idempotent(
    ctx: AdminContext,
    *,
    endpoint: str,
    key: str | None,
    payload: BaseModel | dict[str, Any],
    run: Callable[[], Awaitable[dict[str, Any]]],
    status: int = 201,
) -> Response:
    async def action(finalize: Finalize | None) -> dict[str, Any]:
        return await run()

    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json", exclude_unset=True)

    return await run_idempotent(
        ctx.db,
        organization_id=ctx.organization_id,
        user_id=ctx.principal.user_id,
        endpoint=endpoint,
        key=key,
        payload=payload,
        request_id=ctx.request_id,
        action=action,
        status=status,
    )
