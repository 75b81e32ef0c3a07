"""The write side's HTTP routes (docs/BOOKING.md), one module per resource under booking/routes/."""

from __future__ import annotations

from fastapi import APIRouter

from therapy_scheduler.booking.routes import holds, sessions, suggest

router = APIRouter()
for module in (holds, sessions, suggest):
    router.include_router(module.router)
