"""HTTP routes of the reference data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from therapy_scheduler.auth.conditional import etag_caller
from therapy_scheduler.auth.principal import Principal, current_principal
from therapy_scheduler.dropdown.responses import DropdownResponse
from therapy_scheduler.dropdown.service import DROPDOWN_TYPES, dropdown_data
from therapy_scheduler.infra.conditional import Watch, validate
from therapy_scheduler.kit.envelope import JSON, ok
from therapy_scheduler.kit.openapi import conditional_ok_response, error_responses
from therapy_scheduler.kit.params import StrictBool, WordList
from therapy_scheduler.kit.time import utcnow

router = APIRouter(tags=["reference data"])


class DropdownQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # validate_default: the default "all" must be expanded like an explicit `types=all`.
    types: WordList = Field(default=["all"], validate_default=True)
    include_inactive: StrictBool = False
    include_contact: StrictBool = False

    @field_validator("types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t != "all" and t not in DROPDOWN_TYPES]
        if unknown:
            raise ValueError(f"unknown type(s): {', '.join(sorted(unknown))}")
        if not value or "all" in value:
            return list(DROPDOWN_TYPES)
        return value


@router.get(
    "/get-dropdown-data",
    summary="People, places and vocabularies for forms, scoped to the caller",
    responses=error_responses(400, 401, 403) | conditional_ok_response(DropdownResponse),
)
async def get_dropdown_data(
    request: Request,
    query: Annotated[DropdownQuery, Query()],
    principal: Annotated[Principal, Depends(current_principal)],
) -> Response:
    app = request.app
    # The version is read before the lists (infra/conditional.py); it also keys the server cache.
    async with app.state.db.read() as conn:
        validator = await validate(
            request,
            conn,
            route="get-dropdown-data",
            query=query.model_dump(mode="json"),
            caller=etag_caller(principal),
            now=utcnow(),
            watch=Watch(hold_expiry=False),
        )
    if validator.not_modified:
        return validator.response()
    data, cached, last_updated = await dropdown_data(
        conn_factory=app.state.db.read,
        cache=app.state.cache,
        ttl=app.state.settings.dropdown_cache_seconds,
        principal=principal,
        types=query.types,
        include_inactive=query.include_inactive,
        include_contact=query.include_contact,
        version=validator.version,
    )
    return validator.tag(JSON(ok(data=data, cached=cached, lastUpdated=last_updated)))
