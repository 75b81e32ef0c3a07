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
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.booking.errors import SupervisionNotContained, SupervisorCredentialRequired
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries import Busy
from therapy_scheduler.booking.queries.supervision import (
    Supervising,
    contained,
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
    # `reason` and `service_code` tell the two cases apart (the forecast's summary says them).
    details: dict[str, Any] = (
        {"reason": "not_within_supervised", "service_code": other.service_code}
        if outer
        else {"reason": "supervision_not_within", "service_code": other.service_code}
    )
    return Problem(
        SupervisionNotContained,
        message,
        index,
        {"conflict": _range(other), "requested": _range(o), **details},
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


@dataclass(frozen=True)
class Alone:
    """Supervisions left standing alone: sessions (their ids) and live held slots (their holds'
    ids, as the `hold.*` webhooks name them; such a hold can no longer be confirmed)."""

    session_ids: list[uuid.UUID] = field(default_factory=list)
    hold_ids: list[uuid.UUID] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.session_ids or self.hold_ids)

    def __add__(self, other: Alone) -> Alone:
        return Alone(
            list(dict.fromkeys([*self.session_ids, *other.session_ids])),
            list(dict.fromkeys([*self.hold_ids, *other.hold_ids])),
        )


def _alone(found: list[Supervising]) -> Alone:
    return Alone(
        list(dict.fromkeys(s.id for s in found if s.kind == "session")),
        list(dict.fromkeys(s.id for s in found if s.kind == "hold")),
    )


async def left_alone(
    conn: AsyncConnection,
    *,
    session: Any,
    now: datetime,
    instead: list[Occurrence] | None = None,
) -> Alone:
    """The supervisions (sessions and live held slots) that lie within ordinary `session` and stand
    alone once it is cancelled (`instead` None) or moved to the occurrences `instead` (those not
    within them)."""
    if session.supervises is not None:
        return Alone()
    within = await supervising_within(
        conn,
        client_id=session.client_id,
        code=session.service_code,
        start=session.start_time,
        end=session.end_time,
        now=now,
    )
    if not within or not instead:
        return _alone(within)
    # Moved: those still within the new time keep their supervised session (the check has seen to
    # it: a supervision overlapping the new time lies within it).
    kept: set[tuple[str, uuid.UUID]] = set()
    for o in instead:
        kept.update(
            (s.kind, s.id)
            for s in await supervising_within(
                conn,
                client_id=session.client_id,
                code=session.service_code,
                start=o.start,
                end=o.end,
                now=now,
            )
        )
    return _alone([s for s in within if (s.kind, s.id) not in kept])


async def left_alone_by_release(
    conn: AsyncConnection, *, client_id: uuid.UUID, released: list[Any], now: datetime
) -> Alone:
    """After the held slots `released` (hold occurrences) stopped counting: the supervisions within
    an ordinary one of them that no other live ordinary session or held slot contains (a released
    reschedule hold leaves the supervisions of the session it would have moved where they were)."""
    alone: list[Supervising] = []
    for o in released:
        if o.supervises is not None:
            continue
        for s in await supervising_within(
            conn,
            client_id=client_id,
            code=o.service_code,
            start=o.start_time,
            end=o.end_time,
            now=now,
        ):
            if s not in alone and not await contained(
                conn, client_id=client_id, code=o.service_code, start=s.start, end=s.end, now=now
            ):
                alone.append(s)
    return _alone(alone)


async def check_still_supervised(
    conn: AsyncConnection,
    *,
    client_id: uuid.UUID,
    held: list[Any],
    now: datetime,
    named_in: ZoneInfo,
) -> None:
    """At confirm: each held slot that was held as a supervision must still lie within a live
    ordinary session or held slot of the code it supervises; if that one was cancelled, released,
    moved or let expire since, the confirm is refused (docs/DECISIONS.md "Supervision overlap")."""
    for o in held:
        if o.supervises is None:
            continue
        if await contained(
            conn,
            client_id=client_id,
            code=o.supervises,
            start=o.start_time,
            end=o.end_time,
            now=now,
        ):
            continue
        label = Occurrence(o.start_time, o.end_time).label(named_in)
        raise SupervisionNotContained(
            f"The occurrence on {label} was held to supervise the client's {o.supervises} "
            "session, which no longer contains it: release this hold and hold the time again "
            f"(without a {o.supervises} session it is booked as an ordinary session), or book "
            f"the {o.supervises} session again first",
            details={
                "occurrence_index": o.occurrence_index,
                "reason": "supervised_session_gone",
                "supervised_service_code": o.supervises,
                "requested": {"start_time": iso_utc(o.start_time), "end_time": iso_utc(o.end_time)},
            },
        )


def alone_warning(alone: Alone) -> dict[str, Any]:
    """The warning naming supervisions that now stand alone (cancel, reschedule, release)."""
    return {
        "code": UNSUPPORTED,
        "message": "A supervision now stands alone: the session it supervised no longer "
        "contains it. Cancel or move the supervision session (release a held one: it can no "
        "longer be confirmed), or book the supervised session again",
        "session_ids": [str(i) for i in alone.session_ids],
        "hold_ids": [str(i) for i in alone.hold_ids],
    }
