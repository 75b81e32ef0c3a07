"""`POST /admin/import`: the bulk import (docs/IMPORT.md) for the caller's own organization.

The same document and checks as the command line, confined to one organization: `organizations` are
refused, every record belongs to the caller's organization (filled in when absent), and ids of other
organizations are unknown ids. One transaction; a dry run reports every problem and changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.common import AdminContext
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.dropdown.service import invalidate_dropdowns
from therapy_scheduler.importing.service import run_import
from therapy_scheduler.kit.envelope import ok

OWNED = ("locations", "therapists", "clients", "users")


def _in_organization(document: dict[str, Any], organization_id: str) -> dict[str, Any]:
    out = dict(document)
    for kind in OWNED:
        records = out.get(kind)
        if isinstance(records, list):
            out[kind] = [
                {"organization_id": organization_id, **r} if isinstance(r, dict) else r
                for r in records
            ]
    return out


async def import_for_organization(
    *, ctx: AdminContext, document: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    """Import into the caller's organization (admins only); 400 IMPORT_INVALID lists every problem."""
    ctx.require(Capability.IMPORT_DATA, "Only admins import data")

    async def audit(conn: AsyncConnection, counts: dict[str, int]) -> None:
        await ctx.audit(
            conn, "import.apply", "organization", ctx.organization_id, {"counts": counts}
        )

    report = await run_import(
        ctx.db,
        _in_organization(document, str(ctx.organization_id)),
        dry_run=dry_run,
        scope_org=ctx.organization_id,
        before_commit=audit,
    )
    if not dry_run:
        await invalidate_dropdowns(ctx.cache, ctx.organization_id)
    return ok(dry_run=dry_run, counts=report.counts)
