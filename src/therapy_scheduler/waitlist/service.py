"""Waitlist entries (docs/WAITLIST.md): create, list, show, change, remove; the candidates for a gap;
the board's summary. Admins and schedulers only (a therapist gets 403, as for other staff-only
resources)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from therapy_scheduler.auth.capabilities import Capability
from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.errors import NotFound
from therapy_scheduler.infra import audit_log as audit
from therapy_scheduler.infra.db import Database
from therapy_scheduler.infra.idempotency import Finalize
from therapy_scheduler.kit.cursor import decode_cursor, encode_cursor
from therapy_scheduler.kit.envelope import ok
from therapy_scheduler.kit.time import iso_utc, utcnow
from therapy_scheduler.waitlist import queries
from therapy_scheduler.waitlist.errors import EntryHasOpenOffer, invalid
from therapy_scheduler.waitlist.matcher import fitting_starts, passes_rules, therapist_fits
from therapy_scheduler.waitlist.offers import offer_json
from therapy_scheduler.waitlist.schemas import EntryCreate, EntryListParams, EntryPatch, MatchParams

MAX_MATCHES = 20
MATCH_TRIES_PER_ENTRY = 4
MAX_GAP = timedelta(hours=8)


def require_staff(principal: Principal) -> None:
    principal.require(
        Capability.BOOK_FOR_ANY_THERAPIST, "Only admins and schedulers manage the waitlist"
    )


def entry_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "client_id": str(row.client_id),
        "service_code": row.service_code,
        "duration_minutes": row.duration_minutes,
        "therapist_ids": row.therapist_ids,
        "windows": row.windows,
        "time_zone": row.time_zone,
        "earliest_date": row.earliest_date.isoformat(),
        "latest_date": row.latest_date.isoformat() if row.latest_date else None,
        "location_type": row.location_type,
        "priority": row.priority,
        "note": row.note,
        "status": row.status,
        "open_offer_id": str(row.open_offer_id) if row.open_offer_id else None,
        "created_at": iso_utc(row.created_at),
        "updated_at": iso_utc(row.updated_at),
    }


def _windows(windows: list[Any]) -> list[dict[str, Any]]:
    return [{"weekday": w.weekday, "start": w.start, "end": w.end} for w in windows]


async def create_entry(
    *,
    db: Database,
    principal: Principal,
    body: EntryCreate,
    request_id: str | None,
    finalize: Finalize | None = None,
) -> dict[str, Any]:
    """Put a client on the waitlist (the client must be active in the caller's organization);
    `finalize` stores the answer for its Idempotency-Key in the same transaction."""
    require_staff(principal)
    if body.latest_date is not None and body.latest_date < body.earliest_date:
        raise invalid("latest_date", "must not be before earliest_date")
    now = utcnow()
    entry_id = uuid.uuid4()
    async with db.write() as conn:
        if not await queries.client_active(conn, principal.organization_id, body.client_id):
            raise NotFound("Client not found (or not active)", details={"field": "client_id"})
        await queries.insert_entry(
            conn,
            {
                "id": entry_id,
                "organization_id": principal.organization_id,
                "client_id": body.client_id,
                "service_code": body.service_code,
                "duration_minutes": body.duration_minutes,
                "therapist_ids": (
                    [str(t) for t in body.therapist_ids] if body.therapist_ids else None
                ),
                "windows": _windows(body.windows),
                "time_zone": body.time_zone,
                "earliest_date": body.earliest_date,
                "latest_date": body.latest_date,
                "location_type": body.location_type,
                "priority": body.priority,
                "note": body.note,
                "status": "waiting",
                "created_by": principal.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="waitlist.entry.create",
            entity_type="waitlist_entry",
            entity_id=entry_id,
            request_id=request_id,
            details={"service_code": body.service_code, "priority": body.priority},
            client_ids=[body.client_id],
        )
        row = await queries.entry(conn, principal.organization_id, entry_id)
        created = ok(data=entry_json(row))
        if finalize is not None:
            await finalize(conn, created)
    return created


async def list_entries(
    *, db: Database, principal: Principal, params: EntryListParams
) -> dict[str, Any]:
    """Entries in offer order (priority, then waiting time), a page at a time."""
    require_staff(principal)
    after = None
    if params.cursor:
        priority, created_at, last_id = decode_cursor(
            "waitlist", params.cursor, (int, datetime, uuid.UUID)
        )
        after = (priority, created_at, last_id)
    async with db.read() as conn:
        rows = await queries.entries_page(
            conn,
            principal.organization_id,
            status=params.status,
            client_id=params.client_id,
            service_code=params.service_code,
            after=after,
            limit=params.limit + 1,
        )
        waiting = await queries.waiting_count(conn, principal.organization_id)
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    last = rows[-1] if rows else None  # the cursor is the page's position, before the filter below
    if params.therapist_id is not None:
        wanted = str(params.therapist_id)
        rows = [r for r in rows if not r.therapist_ids or wanted in r.therapist_ids]
    return ok(
        data=[entry_json(r) for r in rows],
        waiting=waiting,
        next_cursor=(
            encode_cursor("waitlist", last.priority, last.created_at, last.id)
            if more and last is not None
            else None
        ),
    )


async def _visible(db: Database, principal: Principal, entry_id: uuid.UUID) -> Any:
    async with db.read() as conn:
        row = await queries.entry(conn, principal.organization_id, entry_id)
    if row is None:
        raise NotFound("Waitlist entry not found", details={"field": "entry_id"})
    return row


async def get_entry(*, db: Database, principal: Principal, entry_id: uuid.UUID) -> dict[str, Any]:
    require_staff(principal)
    return ok(data=entry_json(await _visible(db, principal, entry_id)))


async def update_entry(
    *,
    db: Database,
    principal: Principal,
    entry_id: uuid.UUID,
    patch: EntryPatch,
    request_id: str | None,
) -> dict[str, Any]:
    """Change what an entry waits for; an open offer stays as it was made."""
    require_staff(principal)
    changes = patch.model_dump(exclude_unset=True)
    for field in ("service_code", "duration_minutes", "windows", "time_zone", "earliest_date",
                  "priority"):  # fmt: skip
        if field in changes and changes[field] is None:
            raise invalid(field, "may not be null")
    if "windows" in changes:
        changes["windows"] = _windows(patch.windows or [])
    if "therapist_ids" in changes:
        changes["therapist_ids"] = [str(t) for t in patch.therapist_ids or []] or None
    async with db.write() as conn:
        row = await queries.entry(conn, principal.organization_id, entry_id, for_update=True)
        if row is None:
            raise NotFound("Waitlist entry not found", details={"field": "entry_id"})
        earliest = changes.get("earliest_date", row.earliest_date)
        latest = changes.get("latest_date", row.latest_date)
        if latest is not None and latest < earliest:
            raise invalid("latest_date", "must not be before earliest_date")
        await queries.update_entry(conn, entry_id, {**changes, "updated_at": utcnow()})
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="waitlist.entry.update",
            entity_type="waitlist_entry",
            entity_id=entry_id,
            request_id=request_id,
            details={"fields": sorted(changes)},
            client_ids=[row.client_id],
        )
        row = await queries.entry(conn, principal.organization_id, entry_id)
    return ok(data=entry_json(row))


async def remove_entry(
    *, db: Database, principal: Principal, entry_id: uuid.UUID, request_id: str | None
) -> dict[str, Any]:
    """Take an entry off the waitlist (kept for history); one with an open offer must have the offer
    accepted or declined first (409 ENTRY_HAS_OPEN_OFFER)."""
    require_staff(principal)
    async with db.write() as conn:
        row = await queries.entry(conn, principal.organization_id, entry_id, for_update=True)
        if row is None:
            raise NotFound("Waitlist entry not found", details={"field": "entry_id"})
        if row.open_offer_id is not None:
            raise EntryHasOpenOffer(
                "Accept or decline the entry's open offer first",
                details={"offer_id": str(row.open_offer_id)},
            )
        await queries.update_entry(conn, entry_id, {"status": "removed", "updated_at": utcnow()})
        await audit.record(
            conn,
            organization_id=principal.organization_id,
            actor_user_id=principal.user_id,
            action="waitlist.entry.remove",
            entity_type="waitlist_entry",
            entity_id=entry_id,
            request_id=request_id,
            client_ids=[row.client_id],
        )
    return ok(id=str(entry_id), deleted=True)


async def matches(*, db: Database, principal: Principal, params: MatchParams) -> dict[str, Any]:
    """The entries that fit a gap of one therapist now, in offer order, each with its first start
    that passes every booking rule (checked in a transaction that keeps nothing)."""
    require_staff(principal)
    start, end = params.start, params.end
    if start.tzinfo is None:
        raise invalid("start", "needs a UTC offset")
    if end.tzinfo is None:
        raise invalid("end", "needs a UTC offset")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise invalid("end", "must be after start")
    if end - start > MAX_GAP:
        raise invalid("end", "the gap may be at most 8 hours")
    async with db.read() as conn:
        if not await queries.therapist_in(conn, principal.organization_id, params.therapist_id):
            raise NotFound("Therapist not found", details={"field": "therapist_id"})
        entries = await queries.candidates(
            conn, principal.organization_id, params.therapist_id, start, end
        )
    found: list[dict[str, Any]] = []
    for entry in entries:
        if len(found) >= MAX_MATCHES:
            break
        if not therapist_fits(entry, params.therapist_id):
            continue
        starts = fitting_starts(entry, start, end, utcnow())
        for _, at in zip(range(MATCH_TRIES_PER_ENTRY), starts, strict=False):
            if await passes_rules(db, principal, entry, params.therapist_id, at):
                found.append(
                    {
                        "entry": entry_json_of_candidate(entry),
                        "start_time": iso_utc(at),
                        "end_time": iso_utc(at + timedelta(minutes=entry.duration_minutes)),
                    }
                )
                break
    return ok(data=found, therapist_id=str(params.therapist_id))


def entry_json_of_candidate(row: Any) -> dict[str, Any]:
    shown = entry_json(_WithOffer(row))
    return shown


class _WithOffer:
    """A candidate row (which has no open offer by definition) in the shape `entry_json` reads."""

    def __init__(self, row: Any) -> None:
        self._row = row
        self.open_offer_id = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


async def board_summary(
    *,
    db: Database,
    principal: Principal,
    start: datetime | None,
    end: datetime | None,
    therapist_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The waitlist's length and the open offers (in a range), for the board's week view."""
    require_staff(principal)
    for field, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise invalid(field, "needs a UTC offset")
    async with db.read() as conn:
        waiting = await queries.waiting_count(conn, principal.organization_id)
        offers = await queries.open_offers(
            conn,
            principal.organization_id,
            start=start,
            end=end,
            therapist_id=therapist_id,
            limit=500,
        )
    return ok(waiting=waiting, offers=[offer_json(o) for o in offers])
