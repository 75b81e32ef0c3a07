"""The demo clinic's waitlist (docs/WAITLIST.md): a few clients waiting for an hour with a therapist
who already works with them, at any time of that therapist's working week, so that cancelling one of
that therapist's upcoming sessions on the board makes an offer appear."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.demo import queries
from therapy_scheduler.errors import AppError
from therapy_scheduler.infra.db import Database
from therapy_scheduler.waitlist.schemas import EntryCreate, WeeklyWindow
from therapy_scheduler.waitlist.service import create_entry

THERAPISTS = 4  # therapists with waiting clients
CLIENTS_EACH = 2
WAIT_DAYS = 60
NOTES = ("Family can start any weekday", "Asked to be called first if a slot opens")


async def add_waitlist(db: Database, principal: Principal, now: datetime) -> int:
    """Waitlist entries for RBTs' caseload clients (an hour of 97153, any time 06:00-21:00 in the
    therapist's zone, over the next WAIT_DAYS days); returns how many were added."""
    first, last = now.date(), now.date() + timedelta(days=WAIT_DAYS)
    async with db.write() as conn:
        # The slots the demo's history freed are not offered: the entries stay for the board's user.
        await queries.close_freed_slots(conn, organization_id=principal.organization_id, now=now)
    async with db.read() as conn:
        pairs = await queries.caseload_pairs(
            conn, organization_id=principal.organization_id, first_day=first, last_day=last
        )
    by_therapist: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
    for row in pairs:
        clients = by_therapist.setdefault(row.id, [])
        if all(c != row.client_id for c, _ in clients):
            clients.append((row.client_id, row.time_zone))
    added = 0
    chosen = [t for t, clients in by_therapist.items() if len(clients) >= CLIENTS_EACH]
    for rank, therapist_id in enumerate(chosen[:THERAPISTS]):
        for index, (client_id, zone) in enumerate(by_therapist[therapist_id][:CLIENTS_EACH]):
            body = EntryCreate(
                client_id=client_id,
                service_code="97153",
                duration_minutes=60,
                therapist_ids=[therapist_id],
                windows=[WeeklyWindow(weekday=d, start="06:00", end="21:00") for d in range(7)],
                time_zone=zone,
                earliest_date=first,
                latest_date=last,
                priority=50 - 10 * index - rank,
                note=NOTES[index % len(NOTES)],
            )
            try:
                await create_entry(db=db, principal=principal, body=body, request_id="demo")
            except AppError:
                continue
            added += 1
    return added
