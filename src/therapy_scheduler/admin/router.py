"""The admin API under `/admin`: one route module per resource (docs/ADMIN.md)."""

from __future__ import annotations

from fastapi import APIRouter

from therapy_scheduler.admin.routes import (
    authorizations,
    availability,
    clients,
    imports,
    locations,
    organization,
    therapists,
    travel,
    users,
)

router = APIRouter()
for module in (
    therapists,
    availability,
    clients,
    locations,
    travel,
    authorizations,
    users,
    organization,
    imports,
):
    router.include_router(module.router)
