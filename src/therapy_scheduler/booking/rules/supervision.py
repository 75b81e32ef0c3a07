"""Supervision overlap (docs/BOOKING.md "Supervision overlap", docs/DECISIONS.md): the one case in
which two sessions or holds of one client may overlap.

An organization lists [supervising, supervised] service-code pairs (default 97155 over 97153). Each
occurrence of a booking is classified here, under the client's lock, against the client's busy time:

* it *supervises* when its code supervises the code of the ordinary session or hold it overlaps:
  it must lie within that one (`SUPERVISION_NOT_CONTAINED`), no other row supervising the same code
  may overlap it (a client conflict), and its therapist must hold a supervising credential
  (`SUPERVISOR_CREDENTIAL_REQUIRED`); it is stored with `supervises` = the supervised code;
* otherwise it is *ordinary* (a 97155 that overlaps nothing is an ordinary session, e.g. parent
  training): it may overlap only supervising rows of its own code that lie within it.

Everything else goes through the slot conflicts of `checks.slot_conflicts` as before. The PostgreSQL
exclusion constraints of migration 0006 admit exactly these overlaps (without containment), as the
backstop; on SQLite the serialized write transaction makes this check the rule.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.booking.errors import SupervisionNotContained, SupervisorCredentialRequired
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Busy
from therapy_scheduler.booking.queries.supervision import (
    supervising_within,
    therapist_credential,
)
from therapy_scheduler.booking.rules.checks import Problem, slot_conflicts
from therapy_scheduler.domain.organization_settings import OrganizationSettings
from therapy_scheduler.domain.vocab import SUPERVISING_CREDENTIALS
from therapy_scheduler.kit.time import iso_utc

_SUPERVISING = frozenset(c.upper() for c in SUPERVISING_CREDENTIALS)

UNSUPPORTED = "SUPERVISION_UNSUPPORTED"


def may_supervise(credential: str | None) -> bool:
    return (credential or "").strip().upper() in _SUPERVISING


@dataclass(frozen=True)
class Supervision:
    """Per occurrence, the code it supervises (None: ordinary), and every problem in occurrence
    order (the hold is refused with the first; the forecast lists them all)."""

    supervises: list[str | None]
    problems: list[Problem] = field(default_factory=list)

    @property
    def problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def _range(b: Busy | Occurrence) -> dict[str, str]:
    return {"start_time": iso_utc(b.start), "end_time": iso_utc(b.end)}


def classify(
    occurrences: list[Occurrence],
    busy: list[Busy],
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    service_code: str,
    settings: OrganizationSettings,
    named_in: ZoneInfo,
) -> Supervision:
    """Each occurrence supervising or ordinary; the containment problems and the slot conflicts
    (every overlap the pairs do not allow), in occurrence order."""
    return classify_against(
        occurrences,
        busy,
        therapist_id=therapist_id,
        client_id=client_id,
        service_code=service_code,
        supervised_codes=settings.supervised_codes(service_code),
        named_in=named_in,
    )


def may_overlap(
    b: Busy,
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    service_code: str,
    supervised_codes: frozenset[str],
) -> bool:
    """Whether a booking of `service_code` may overlap the session or hold `b` at all (then only as
    `classify_against` decides, e.g. within it): `b` is the client's, with another therapist, and
    either ordinary of a code this one supervises, or supervising this one's code. Everything else
    of the therapist or the client is busy time for it (the free-slot engine, booking/slots.py)."""
    if b.client_id != client_id or b.therapist_id == therapist_id:
        return False
    if b.supervises is None:
        return b.service_code in supervised_codes
    return b.supervises == service_code


def classify_against(
    occurrences: list[Occurrence],
    busy: list[Busy],
    *,
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    service_code: str,
    supervised_codes: frozenset[str],
    named_in: ZoneInfo,
) -> Supervision:
    """`classify` with the codes `service_code` supervises already looked up (the free-slot engine
    judges every slot with it)."""
    out: list[str | None] = []
    problems: list[Problem] = []
    for index, o in enumerate(occurrences):
        mine = [
            b
            for b in busy
            if b.start < o.end
            and o.start < b.end
            and b.client_id == client_id
            and b.therapist_id != therapist_id
        ]
        ordinary = [b for b in mine if b.supervises is None]
        tolerated: list[Busy] = []
        supervises: str | None = None
        codes = {b.service_code for b in ordinary}
        if ordinary and len(codes) == 1 and codes <= supervised_codes:
            container = next((b for b in ordinary if b.start <= o.start and o.end <= b.end), None)
            if container is None:
                problems.append(_not_contained(o, ordinary[0], index, named_in, outer=True))
                out.append(None)
                continue
            supervises = container.service_code
            tolerated = [container]
        else:
            outside = next(
                (
                    b
                    for b in mine
                    if b.supervises == service_code and not (o.start <= b.start and b.end <= o.end)
                ),
                None,
            )
            if outside is not None:
                problems.append(_not_contained(o, outside, index, named_in, outer=False))
                out.append(None)
                continue
            tolerated = [b for b in mine if b.supervises == service_code]
        rest = [b for b in busy if b not in tolerated]
        problems += [
            replace(conflict, occurrence_index=index)
            for conflict in slot_conflicts(
                [o], rest, therapist_id=therapist_id, client_id=client_id, named_in=named_in
            )
        ]
        out.append(supervises)
    return Supervision(out, problems)


def _not_contained(
    o: Occurrence, other: Busy, index: int, named_in: ZoneInfo, *, outer: bool
) -> Problem:
    what = "session" if other.kind == "session" else "held slot"
    message = (
        f"The occurrence on {o.label(named_in)} supervises the client's {what} of service "
        f"{other.service_code} but does not lie within it"
        if outer
        else f"The occurrence on {o.label(named_in)} does not contain the {what} of service "
        f"{other.service_code} that supervises the client then"
    )
    return Problem(
        SupervisionNotContained,
        message,
        index,
        {"conflict": _range(other), "requested": _range(o)},
    )


async def check_supervision(
    conn: AsyncConnection,
    *,
    occurrences: list[Occurrence],
    busy: list[Busy],
    therapist_id: uuid.UUID,
    client_id: uuid.UUID,
    service_code: str,
    settings: OrganizationSettings,
    named_in: ZoneInfo,
) -> Supervision:
    """`classify`, then the supervisor's credential when some occurrence supervises (read only then)."""
    found = classify(
        occurrences,
        busy,
        therapist_id=therapist_id,
        client_id=client_id,
        service_code=service_code,
        settings=settings,
        named_in=named_in,
    )
    if not any(found.supervises):
        return found
    credential = await therapist_credential(conn, therapist_id)
    if may_supervise(credential):
        return found
    refused = [
        Problem(
            SupervisorCredentialRequired,
            f"The occurrence on {occurrences[index].label(named_in)} overlaps the client's "
            f"{code} session: only a BCBA or BCaBA may supervise it",
            index,
            {
                "credential": credential,
                "required": list(SUPERVISING_CREDENTIALS),
                "supervised_service_code": code,
                "requested": _range(occurrences[index]),
            },
        )
        for index, code in enumerate(found.supervises)
        if code is not None
    ]
    problems = sorted(found.problems + refused, key=lambda p: p.occurrence_index)
    return Supervision(found.supervises, problems)


async def left_alone(
    conn: AsyncConnection,
    *,
    session: Any,
    instead: list[Occurrence] | None = None,
) -> list[uuid.UUID]:
    """The supervising sessions that lie within ordinary `session` and would stand alone once it is
    cancelled (`instead` None) or moved to the occurrences `instead` (those not within them)."""
    if session.supervises is not None:
        return []
    within = await supervising_within(
        conn,
        client_id=session.client_id,
        code=session.service_code,
        start=session.start_time,
        end=session.end_time,
    )
    if not within or not instead:
        return within
    # Moved: those still within the new time keep their supervised session (the check has seen to
    # it: a supervising session overlapping the new time lies within it).
    kept = await _within_any(conn, session, instead)
    return [i for i in within if i not in kept]


async def _within_any(
    conn: AsyncConnection, session: Any, occurrences: list[Occurrence]
) -> set[uuid.UUID]:
    kept: set[uuid.UUID] = set()
    for o in occurrences:
        kept.update(
            await supervising_within(
                conn,
                client_id=session.client_id,
                code=session.service_code,
                start=o.start,
                end=o.end,
            )
        )
    return kept


def alone_warning(session_ids: list[uuid.UUID]) -> dict[str, Any]:
    """The warning naming supervising sessions that now stand alone (cancel, reschedule)."""
    return {
        "code": UNSUPPORTED,
        "message": "A supervision session now stands alone: the session it supervised no longer "
        "contains it. Cancel or move the supervision session, or book the supervised session again",
        "session_ids": [str(i) for i in session_ids],
    }
