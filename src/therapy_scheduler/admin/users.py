"""Users (who signs in, with which role) and the organization's own settings. Admins only.

E-mails identify a user across the whole service, so they are unique across organizations; a taken
e-mail is refused with 409 EMAIL_TAKEN, which says nothing about where it is used. An admin cannot
deactivate themselves or change their own role, so an organization never locks itself out by mistake.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin import crud
from therapy_scheduler.admin.common import AdminContext, invalid
from therapy_scheduler.admin.crud import Resource, instant
from therapy_scheduler.admin.errors import EmailTaken, SelfLockout, TherapistAlreadyLinked
from therapy_scheduler.admin.queries import organization as org_queries
from therapy_scheduler.admin.queries import users as queries
from therapy_scheduler.admin.queries.users import UserRow
from therapy_scheduler.admin.schemas import UserCreate, UserListParams, UserPatch
from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.errors import NotFound, ValidationFailed
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import utcnow


def serialize_user(row: UserRow, _contact: bool) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "email": row.email,
        "full_name": row.full_name,
        "role": row.role,
        "therapist_id": str(row.therapist_id) if row.therapist_id else None,
        "is_active": row.is_active,
        "created_at": instant(row.created_at),
    }


USERS = Resource(
    "user", queries.USERS, Capability.MANAGE_STAFF, Capability.MANAGE_STAFF,
    serialize_user, "is_active",
)  # fmt: skip


def _taken() -> EmailTaken:
    return EmailTaken(
        "This e-mail address is already used by another user", details={"field": "email"}
    )


async def _check_link(
    conn: AsyncConnection,
    ctx: AdminContext,
    *,
    user_id: uuid.UUID | None,
    email: str | None,
    role: str,
    therapist_id: uuid.UUID | None,
) -> None:
    """E-mail free, therapist link valid (in the organization, not linked to another active user)."""
    if role == "therapist" and therapist_id is None:
        raise invalid("therapist_id", "a therapist user needs therapist_id")
    if email is not None and await queries.email_taken(conn, email, user_id=user_id):
        raise _taken()
    if therapist_id is None:
        return
    if not await queries.therapist_exists(conn, ctx.organization_id, therapist_id):
        raise NotFound("Therapist not found", details={"field": "therapist_id"})
    if await queries.therapist_linked_elsewhere(conn, therapist_id, user_id=user_id):
        raise TherapistAlreadyLinked(
            "This therapist is already linked to another active user",
            details={"field": "therapist_id"},
        )


def _is_email_conflict(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_users_email" in text or "users.email" in text


async def create_user(*, ctx: AdminContext, body: UserCreate) -> dict[str, Any]:
    """A new active user; the e-mail is stored in lower case."""
    values = body.model_dump()
    values["email"] = body.email.lower()
    values["created_at"] = utcnow()

    async def check(conn: AsyncConnection, _values: dict[str, Any]) -> None:
        await _check_link(
            conn, ctx, user_id=None, email=values["email"], role=body.role,
            therapist_id=body.therapist_id,
        )  # fmt: skip

    try:
        return await crud.create_record(ctx, USERS, values, check=check)
    except IntegrityError as exc:  # a concurrent create took the e-mail first
        if _is_email_conflict(exc):
            raise _taken() from exc
        raise


async def list_users(*, ctx: AdminContext, params: UserListParams) -> dict[str, Any]:
    filters = queries.user_filters(
        role=params.role, q=params.q, include_inactive=params.include_inactive
    )
    return await crud.list_records(ctx, USERS, params, filters)


async def update_user(*, ctx: AdminContext, user_id: uuid.UUID, patch: UserPatch) -> dict[str, Any]:
    """Change the given fields; an admin may not change their own role."""
    changes = patch.changes()
    if "email" in changes:
        changes["email"] = changes["email"].lower()

    async def check(conn: AsyncConnection, current: UserRow, new: dict[str, Any]) -> None:
        if user_id == ctx.principal.user_id and new.get("role", current.role) != current.role:
            raise SelfLockout("You cannot change your own role", details={"field": "role"})
        await _check_link(
            conn,
            ctx,
            user_id=user_id,
            email=new.get("email"),
            role=new.get("role", current.role),
            therapist_id=new.get("therapist_id", current.therapist_id),
        )

    try:
        return await crud.update_record(ctx, USERS, user_id, changes, check=check)
    except IntegrityError as exc:
        if _is_email_conflict(exc):
            raise _taken() from exc
        raise


async def set_user_active(*, ctx: AdminContext, user_id: uuid.UUID, active: bool) -> dict[str, Any]:
    """Deactivate (archive) or reactivate a user; their tokens stop working at once."""

    async def check(conn: AsyncConnection, current: UserRow) -> None:
        if user_id == ctx.principal.user_id:
            raise SelfLockout("You cannot deactivate yourself")
        if active and current.therapist_id is not None:
            await _check_link(
                conn, ctx, user_id=user_id, email=None, role=current.role,
                therapist_id=current.therapist_id,
            )  # fmt: skip

    record, changed = await crud.set_archived(ctx, USERS, user_id, archive=not active, check=check)
    return ok(data=record, changed=changed)


# --- the organization ---------------------------------------------------------------------------


async def _organization(conn: AsyncConnection, ctx: AdminContext) -> dict[str, Any]:
    row = await org_queries.organization(conn, ctx.organization_id)
    return ok(
        data={
            "organization_id": str(row.id),
            "name": row.name,
            "time_zone": row.time_zone,
            "settings": OrganizationSettings.load(row.settings).model_dump(mode="json"),
        }
    )


async def get_organization(*, ctx: AdminContext) -> dict[str, Any]:
    """The caller's organization with its complete settings (defaults filled in)."""
    ctx.require(Capability.MANAGE_STAFF, "Only admins manage the organization")
    async with ctx.db.read() as conn:
        return await _organization(conn, ctx)


async def update_settings(*, ctx: AdminContext, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge the given settings into the current ones; the result must be valid as a whole."""
    ctx.require(Capability.MANAGE_STAFF, "Only admins manage the organization")
    if not changes:
        raise invalid("settings", "give at least one setting to change")
    async with ctx.write() as conn:
        raw = await org_queries.stored_settings(conn, ctx.organization_id)
        merged = {**OrganizationSettings.load(raw).model_dump(mode="json"), **changes}
        try:
            settings = OrganizationSettings.model_validate(merged)
        except ValidationError as exc:
            fields = [
                {
                    "field": ".".join(str(p) for p in e["loc"]) or "settings",
                    "message": str(e["msg"]).removeprefix("Value error, "),
                    "type": e["type"],
                }
                for e in exc.errors()
            ]
            raise ValidationFailed(
                "Invalid settings: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields),
                details={"fields": fields},
            ) from exc
        await org_queries.store_settings(
            conn, ctx.organization_id, settings.model_dump(mode="json")
        )
        await ctx.audit(
            conn, "organization.settings.update", "organization", ctx.organization_id,
            {"fields": sorted(changes)},
        )  # fmt: skip
        return await _organization(conn, ctx)
