"""SQL of the read endpoints (SQLAlchemy Core): session rows with names, and their serialization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import aliased

from therapy_scheduler.kit.time import iso_utc
from therapy_scheduler.models import Client, Session, Therapist
from therapy_scheduler.reference.authorizations import UnitBalance, UnitKey

_T = aliased(Therapist, name="t")
_C = aliased(Client, name="c")

BASE_COLUMNS = (
    Session.id,
    Session.therapist_id,
    Session.client_id,
    Session.start_time,
    Session.end_time,
    Session.status,
    Session.location_type,
    Session.location_id,
    Session.service_code,
    Session.series_id,
    Session.authorization_id,
    Session.units,
    _T.full_name.label("therapist_name"),
    _C.full_name.label("client_name"),
)
DETAIL_COLUMNS = (Session.notes, Session.created_at, Session.updated_at)


def session_rows(*, detailed: bool = False) -> Select[Any]:
    columns = (*BASE_COLUMNS, *DETAIL_COLUMNS) if detailed else BASE_COLUMNS
    return (
        select(*columns)
        .join(_T, _T.id == Session.therapist_id)
        .join(_C, _C.id == Session.client_id)
    )


def _opt(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def serialize_session(
    row: Row[Any],
    *,
    balances: dict[UnitKey, UnitBalance] | None,
    auth_ends: dict[uuid.UUID, Any] | None,
    detailed: bool = False,
) -> dict[str, Any]:
    """The session shape of SPEC §6.1; `balances=None` means the caller may not see authorizations."""
    start: datetime = row.start_time
    end: datetime = row.end_time
    out: dict[str, Any] = {
        "id": str(row.id),
        "therapist_id": str(row.therapist_id),
        "client_id": str(row.client_id),
        "start_time": iso_utc(start),
        "end_time": iso_utc(end),
        "duration_minutes": int((end - start).total_seconds() // 60),
        "status": row.status,
        "location_type": row.location_type,
        "location_id": _opt(row.location_id),
        "service_code": row.service_code,
        "series_id": _opt(row.series_id),
        "therapist": {"id": str(row.therapist_id), "full_name": row.therapist_name},
        "client": {"id": str(row.client_id), "full_name": row.client_name},
    }
    if balances is not None:
        out["authorization"] = _authorization_block(row, balances, auth_ends or {})
    if detailed:
        out["notes"] = row.notes
        out["created_at"] = iso_utc(row.created_at)
        out["updated_at"] = iso_utc(row.updated_at)
    return out


def _authorization_block(
    row: Row[Any], balances: dict[UnitKey, UnitBalance], auth_ends: dict[uuid.UUID, Any]
) -> dict[str, Any] | None:
    if row.authorization_id is None:
        return None
    balance = balances.get((row.authorization_id, row.service_code))
    end_info = auth_ends.get(row.authorization_id)
    units_remaining = balance.remaining if balance else 0
    per_session = max(int(row.units or 0), 1)
    return {
        "id": str(row.authorization_id),
        "end_date": end_info[1].isoformat() if end_info else None,
        "sessions_remaining": max(units_remaining, 0) // per_session,
        "units_remaining": units_remaining,
    }


def authorization_ids(rows: Sequence[Row[Any]]) -> set[uuid.UUID]:
    return {r.authorization_id for r in rows if r.authorization_id is not None}
