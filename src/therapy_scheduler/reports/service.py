"""The supervision report (docs/API.md "Supervision report"): per RBT and calendar month, the direct
hours delivered (completed 97153), the hours of it a supervisor attended (overlap with a completed
97155 of a BCBA or BCaBA for the same client), the share, the contacts, and whether the month meets
the organization's minimum.

A session belongs to the month in which it starts in the organization's time zone, whole, and its
supervision is counted with it (docs/DECISIONS.md "Supervision report").
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.domain.vocab import SUPERVISING_CREDENTIALS
from therapy_scheduler.errors import Forbidden, NotFound
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.intervals import merge
from therapy_scheduler.kit.time import day_bounds, iso_utc
from therapy_scheduler.reports import queries
from therapy_scheduler.reports.schemas import SupervisionReportParams

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SupervisionReport:
    """The report's JSON body and what the PHI read log records: the sessions counted and their
    clients."""

    body: dict[str, Any]
    session_count: int
    client_ids: list[uuid.UUID]


async def supervision_report(
    *, db: Database, principal: Principal, params: SupervisionReportParams
) -> SupervisionReport:
    """Each RBT's supervision figures for the month (a therapist: only their own row)."""
    therapist_id = params.therapist_id
    if not principal.can(Capability.READ_ORG_SCHEDULE):
        if principal.therapist_id is None:
            raise Forbidden("Only admins, schedulers and therapists may read this report")
        if therapist_id is not None and therapist_id != principal.therapist_id:
            raise Forbidden(
                "A therapist sees only their own supervision row",
                details={"field": "therapist_id"},
            )
        therapist_id = principal.therapist_id
    start, end = day_bounds(
        params.first_day, params.next_first_day - timedelta(days=1), principal.zone
    )
    settings = principal.settings
    async with db.read() as conn:
        staff = await queries.rbts(
            conn,
            organization_id=principal.organization_id,
            therapist_id=therapist_id,
            start=start,
            end=end,
        )
        if (
            params.therapist_id is not None
            and not staff
            and not await _is_therapist(conn, principal, params.therapist_id)
        ):
            raise NotFound("Therapist not found", details={"field": "therapist_id"})
        direct = await queries.direct_sessions(
            conn,
            organization_id=principal.organization_id,
            therapist_ids=[r.id for r in staff],
            start=start,
            end=end,
        )
        supervision = await queries.supervision_sessions(
            conn,
            organization_id=principal.organization_id,
            client_ids=list(dict.fromkeys(d.client_id for d in direct)),
            credentials=SUPERVISING_CREDENTIALS,
            lower=min((d.start for d in direct), default=start),
            upper=max((d.end for d in direct), default=end),
        )
    rows = [
        _row(r, [d for d in direct if d.therapist_id == r.id], supervision, settings) for r in staff
    ]
    counted = {d.id: d.client_id for d in direct}
    used = {s.id: s.client_id for s in supervision if any(_overlap(d, s) for d in direct)}
    body = ok(
        data={
            "month": params.month,
            "time_zone": principal.zone.key,
            "start_time": iso_utc(start),
            "end_time": iso_utc(end),
            "minimum": {
                "percent": settings.supervision_min_percent,
                "contacts": settings.supervision_min_contacts,
            },
            "rows": rows,
        }
    )
    clients = list(dict.fromkeys([*counted.values(), *used.values()]))
    return SupervisionReport(body, len(counted) + len(used), clients)


async def _is_therapist(conn: Any, principal: Principal, therapist_id: uuid.UUID) -> bool:
    return bool(
        await queries.therapist_exists(
            conn, organization_id=principal.organization_id, therapist_id=therapist_id
        )
    )


def _overlap(a: queries.Worked, b: queries.Worked) -> timedelta:
    if a.client_id != b.client_id:
        return timedelta(0)
    return max(timedelta(0), min(a.end, b.end) - max(a.start, b.start))


def _row(
    rbt: Any, direct: list[queries.Worked], supervision: list[queries.Worked], settings: Any
) -> dict[str, Any]:
    by_client: dict[uuid.UUID, list[queries.Worked]] = defaultdict(list)
    for s in supervision:
        by_client[s.client_id].append(s)
    delivered = sum((d.end - d.start for d in direct), timedelta(0))
    supervised = timedelta(0)
    contacts: set[uuid.UUID] = set()
    for d in direct:
        pieces: list[tuple[datetime, datetime]] = []
        for s in by_client.get(d.client_id, []):
            if _overlap(d, s) > timedelta(0):
                contacts.add(s.id)
                pieces.append((max(d.start, s.start), min(d.end, s.end)))
        # Two supervisors at once count once.
        supervised += sum((b - a for a, b in merge(pieces)), timedelta(0))
    direct_hours = round(delivered / _HOUR, 2)
    percent = round(supervised / delivered * 100, 1) if delivered else None
    meets = (
        None
        if percent is None
        else percent >= settings.supervision_min_percent
        and len(contacts) >= settings.supervision_min_contacts
    )
    return {
        "therapist_id": str(rbt.id),
        "therapist_name": rbt.full_name,
        "credential": rbt.credential,
        "direct_hours": direct_hours,
        "supervised_hours": round(supervised / _HOUR, 2),
        "supervision_percent": percent,
        "supervision_contacts": len(contacts),
        "meets_minimum": meets,
    }


CSV_COLUMNS = (
    "month",
    "therapist_id",
    "therapist_name",
    "credential",
    "direct_hours",
    "supervised_hours",
    "supervision_percent",
    "supervision_contacts",
    "meets_minimum",
)
# A spreadsheet reads a cell starting with one of these as a formula (docs/SECURITY.md).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_csv(body: dict[str, Any]) -> str:
    """The report as CSV, one row per RBT, every text cell safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    data = body["data"]
    for row in data["rows"]:
        writer.writerow([_cell({"month": data["month"], **row}[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
