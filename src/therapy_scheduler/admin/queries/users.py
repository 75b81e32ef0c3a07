"""SQL of the admin API's users and of their link to a therapist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.admin.queries.records import Table, name_filter
from therapy_scheduler.models import Therapist, User


class UserRow(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    role: str
    therapist_id: uuid.UUID | None
    is_active: bool
    created_at: datetime


USERS = Table(User, UserRow._fields, UserRow._make, User.full_name)


def user_filters(
    *, role: str | None, q: str | None, include_inactive: bool
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if role:
        filters.append(User.role == role)
    if q:
        filters.append(or_(name_filter(User.full_name, q), name_filter(User.email, q)))
    if not include_inactive:
        filters.append(User.is_active.is_(True))
    return filters


async def email_taken(conn: AsyncConnection, email: str, *, user_id: uuid.UUID | None) -> bool:
    """Whether a user other than `user_id` has this e-mail, in any organization."""
    taken = await conn.execute(select(User.id).where(User.email == email, User.id != user_id))
    return taken.first() is not None


async def therapist_exists(
    conn: AsyncConnection, organization_id: uuid.UUID, therapist_id: uuid.UUID
) -> bool:
    therapist = await conn.execute(
        select(Therapist.id).where(
            Therapist.id == therapist_id, Therapist.organization_id == organization_id
        )
    )
    return therapist.first() is not None


async def therapist_linked_elsewhere(
    conn: AsyncConnection, therapist_id: uuid.UUID, *, user_id: uuid.UUID | None
) -> bool:
    """Whether an active user other than `user_id` is linked to the therapist."""
    other = await conn.execute(
        select(User.id).where(
            User.therapist_id == therapist_id, User.is_active.is_(True), User.id != user_id
        )
    )
    return other.first() is not None
