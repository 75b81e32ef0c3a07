"""HTTP routes of the admin API for therapists, clients, caseloads, locations and calendars.
Thin: parse, resolve the caller, call one service function."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from therapy_scheduler.admin import calendar, crud, locations, people
from therapy_scheduler.admin.common import AdminContext, admin_context
from therapy_scheduler.admin.idempotent import IdempotencyKey, idempotent
from therapy_scheduler.admin.locations import LOCATIONS
from therapy_scheduler.admin.people import CLIENTS, THERAPISTS
from therapy_scheduler.admin.schemas import (
    AvailabilityPut,
    CaseloadPut,
    ClientCreate,
    ClientListParams,
    ClientPatch,
    LocationCreate,
    LocationListParams,
    LocationPatch,
    TherapistCreate,
    TherapistListParams,
    TherapistPatch,
    TimeOffCreate,
    TimeOffListParams,
    TimeOffPatch,
)
from therapy_scheduler.kit.openapi import error_responses

router = APIRouter(prefix="/admin", tags=["admin: people and places"])
Ctx = Annotated[AdminContext, Depends(admin_context)]
READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 413, 415)
CREATE = error_responses(
    400, 401, 403, 404, 409, 413, 415, 422, s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)"
)
Out = dict[str, Any]


def _one(record: Out) -> Out:
    return {"success": True, "data": record}


# --- therapists ---------------------------------------------------------------------------------


@router.get("/therapists", summary="List therapists (admin, scheduler)", responses=READ)
async def list_therapists(ctx: Ctx, params: Annotated[TherapistListParams, Query()]) -> Out:
    return await people.list_therapists(ctx=ctx, params=params)


@router.post("/therapists", status_code=201, summary="Create a therapist (admin)", responses=CREATE)
async def create_therapist(
    ctx: Ctx, body: TherapistCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return _one(await people.create_therapist(ctx=ctx, body=body))

    return await idempotent(
        ctx,
        endpoint="POST /admin/therapists",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=run,
    )


@router.get("/therapists/{therapist_id}", summary="One therapist", responses=READ)
async def get_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return _one(await crud.get_record(ctx, THERAPISTS, therapist_id))


@router.patch("/therapists/{therapist_id}", summary="Change a therapist (admin)", responses=WRITE)
async def update_therapist(ctx: Ctx, therapist_id: uuid.UUID, body: TherapistPatch) -> Out:
    return _one(await people.update_therapist(ctx=ctx, therapist_id=therapist_id, patch=body))


@router.post(
    "/therapists/{therapist_id}/archive", summary="Archive a therapist (admin)", responses=WRITE
)
async def archive_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await people.archive_person(
        ctx=ctx, kind="therapist", person_id=therapist_id, archive=True
    )


@router.post(
    "/therapists/{therapist_id}/restore", summary="Restore an archived therapist", responses=WRITE
)
async def restore_therapist(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await people.archive_person(
        ctx=ctx, kind="therapist", person_id=therapist_id, archive=False
    )


# --- availability and time off ------------------------------------------------------------------


@router.get(
    "/therapists/{therapist_id}/availability",
    summary="Weekly availability windows (local to the therapist's zone)",
    responses=READ,
)
async def get_availability(ctx: Ctx, therapist_id: uuid.UUID) -> Out:
    return await calendar.get_availability(ctx=ctx, therapist_id=therapist_id)


@router.put(
    "/therapists/{therapist_id}/availability",
    summary="Replace every weekly availability window",
    responses=WRITE,
)
async def put_availability(ctx: Ctx, therapist_id: uuid.UUID, body: AvailabilityPut) -> Out:
    return await calendar.put_availability(ctx=ctx, therapist_id=therapist_id, body=body)


@router.get(
    "/therapists/{therapist_id}/time-off",
    summary="Dated exceptions: time off and extra hours",
    responses=READ,
)
async def list_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, params: Annotated[TimeOffListParams, Query()]
) -> Out:
    return await calendar.list_time_off(ctx=ctx, therapist_id=therapist_id, params=params)


@router.post(
    "/therapists/{therapist_id}/time-off",
    status_code=201,
    summary="Add time off or extra hours (local times)",
    responses=error_responses(
        400,
        401,
        403,
        404,
        413,
        415,
        409,
        422,
        s400="Invalid input (VALIDATION_ERROR, NONEXISTENT_LOCAL_TIME)",
        s409="IDEMPOTENCY_IN_PROGRESS (Idempotency-Key)",
    ),
)
async def create_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, body: TimeOffCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return await calendar.create_time_off(ctx=ctx, therapist_id=therapist_id, body=body)

    return await idempotent(
        ctx,
        endpoint="POST /admin/therapists/{id}/time-off",
        key=idempotency_key,
        payload={
            "therapist_id": str(therapist_id),
            **body.model_dump(mode="json", exclude_unset=True),
        },
        run=run,
    )


@router.patch(
    "/therapists/{therapist_id}/time-off/{entry_id}",
    summary="Change a time-off entry",
    responses=WRITE,
)
async def update_time_off(
    ctx: Ctx, therapist_id: uuid.UUID, entry_id: uuid.UUID, body: TimeOffPatch
) -> Out:
    return await calendar.update_time_off(
        ctx=ctx, therapist_id=therapist_id, entry_id=entry_id, patch=body
    )


@router.delete(
    "/therapists/{therapist_id}/time-off/{entry_id}",
    summary="Remove a time-off entry",
    responses=READ,
)
async def delete_time_off(ctx: Ctx, therapist_id: uuid.UUID, entry_id: uuid.UUID) -> Out:
    return await calendar.delete_time_off(ctx=ctx, therapist_id=therapist_id, entry_id=entry_id)


# --- clients ------------------------------------------------------------------------------------


@router.get("/clients", summary="List clients (admin, scheduler)", responses=READ)
async def list_clients(ctx: Ctx, params: Annotated[ClientListParams, Query()]) -> Out:
    return await people.list_clients(ctx=ctx, params=params)


@router.post("/clients", status_code=201, summary="Create a client", responses=CREATE)
async def create_client(
    ctx: Ctx, body: ClientCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return _one(await people.create_client(ctx=ctx, body=body))

    return await idempotent(
        ctx,
        endpoint="POST /admin/clients",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=run,
    )


@router.get("/clients/{client_id}", summary="One client", responses=READ)
async def get_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return _one(await crud.get_record(ctx, CLIENTS, client_id))


@router.patch("/clients/{client_id}", summary="Change a client", responses=WRITE)
async def update_client(ctx: Ctx, client_id: uuid.UUID, body: ClientPatch) -> Out:
    return _one(await people.update_client(ctx=ctx, client_id=client_id, patch=body))


@router.post("/clients/{client_id}/archive", summary="Archive a client", responses=WRITE)
async def archive_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.archive_person(ctx=ctx, kind="client", person_id=client_id, archive=True)


@router.post("/clients/{client_id}/restore", summary="Restore an archived client", responses=WRITE)
async def restore_client(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.archive_person(ctx=ctx, kind="client", person_id=client_id, archive=False)


@router.get("/clients/{client_id}/caseload", summary="The client's therapists", responses=READ)
async def get_caseload(ctx: Ctx, client_id: uuid.UUID) -> Out:
    return await people.get_caseload(ctx=ctx, client_id=client_id)


@router.put(
    "/clients/{client_id}/caseload", summary="Replace the client's therapists", responses=WRITE
)
async def put_caseload(ctx: Ctx, client_id: uuid.UUID, body: CaseloadPut) -> Out:
    return await people.put_caseload(ctx=ctx, client_id=client_id, body=body)


# --- locations ----------------------------------------------------------------------------------


@router.get("/locations", summary="List locations (admin, scheduler)", responses=READ)
async def list_locations(ctx: Ctx, params: Annotated[LocationListParams, Query()]) -> Out:
    return await locations.list_locations(ctx=ctx, params=params)


@router.post("/locations", status_code=201, summary="Create a location", responses=CREATE)
async def create_location(
    ctx: Ctx, body: LocationCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> Out:
        return _one(await locations.create_location(ctx=ctx, body=body))

    return await idempotent(
        ctx,
        endpoint="POST /admin/locations",
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        run=run,
    )


@router.get("/locations/{location_id}", summary="One location", responses=READ)
async def get_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return _one(await crud.get_record(ctx, LOCATIONS, location_id))


@router.patch("/locations/{location_id}", summary="Change a location", responses=WRITE)
async def update_location(ctx: Ctx, location_id: uuid.UUID, body: LocationPatch) -> Out:
    return _one(await locations.update_location(ctx=ctx, location_id=location_id, patch=body))


@router.post("/locations/{location_id}/archive", summary="Deactivate a location", responses=WRITE)
async def archive_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return await locations.set_location_active(ctx=ctx, location_id=location_id, active=False)


@router.post("/locations/{location_id}/restore", summary="Reactivate a location", responses=WRITE)
async def restore_location(ctx: Ctx, location_id: uuid.UUID) -> Out:
    return await locations.set_location_active(ctx=ctx, location_id=location_id, active=True)
