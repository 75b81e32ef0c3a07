"""The organization's travel-time matrix (docs/ADMIN.md "Travel times"): minutes an admin sets between
two locations, either way, overriding what coordinates or the type defaults would give."""

from __future__ import annotations

import uuid
from typing import Any

from therapy_scheduler.admin.common import AdminContext, invalid
from therapy_scheduler.admin.queries import travel as queries
from therapy_scheduler.admin.schemas import TravelTimesPut
from therapy_scheduler.auth.capabilities import Capability as C
from therapy_scheduler.calendar.travel import pair
from therapy_scheduler.kit.envelope import ok


def _entry(from_id: uuid.UUID, to_id: uuid.UUID, minutes: int) -> dict[str, Any]:
    return {"from_location_id": str(from_id), "to_location_id": str(to_id), "minutes": minutes}


async def get_travel_times(*, ctx: AdminContext) -> dict[str, Any]:
    """Every entry of the matrix, each pair once (its ids in ascending order)."""
    ctx.require(C.MANAGE_CLIENTS, "Your role may not view travel times")
    async with ctx.db.read() as conn:
        rows = await queries.travel_entries(conn, ctx.organization_id)
    return ok(data=[_entry(*r) for r in rows])


async def put_travel_times(*, ctx: AdminContext, body: TravelTimesPut) -> dict[str, Any]:
    """Replace the whole matrix. Every id must be a location of the organization, the two ids of an
    entry must differ and a pair may appear once (in either order); otherwise nothing changes."""
    ctx.require(C.MANAGE_CLIENTS, "Your role may not manage travel times")
    entries: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for i, e in enumerate(body.entries):
        if e.from_location_id == e.to_location_id:
            raise invalid(f"entries.{i}.to_location_id", "is the same location as from_location_id")
        key = pair(e.from_location_id, e.to_location_id)
        if key in entries:
            raise invalid(f"entries.{i}", "this pair of locations is given twice")
        entries[key] = e.minutes
    async with ctx.write() as conn:
        known = await queries.known_locations(
            conn, ctx.organization_id, [i for key in entries for i in key]
        )
        for i, e in enumerate(body.entries):
            for side in ("from_location_id", "to_location_id"):
                if getattr(e, side) not in known:
                    raise invalid(f"entries.{i}.{side}", "no such location")
        await queries.replace_travel_entries(
            conn, ctx.organization_id, [(a, b, m) for (a, b), m in sorted(entries.items())]
        )
        await ctx.audit(
            conn, "location_travel.replace", "organization", ctx.organization_id,
            {"entries": len(entries)},
        )  # fmt: skip
    return ok(data=[_entry(a, b, m) for (a, b), m in sorted(entries.items())])
