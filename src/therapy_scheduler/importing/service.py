"""Bulk import of a clinic (docs/IMPORT.md): one transaction, upsert by id, and every problem reported with
its place in the source (JSON path or CSV file and line).

`validate_document` checks each record's shape on its own, so that one bad record does not hide the
problems of the others; `import_document` then checks references against the database (collecting all
problems) and writes nothing unless there are none. A dry run does all of that and rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.calendar.units import default_unit_minutes, session_units
from therapy_scheduler.domain.vocab import WEEKDAYS
from therapy_scheduler.importing import queries
from therapy_scheduler.importing.checks import References
from therapy_scheduler.importing.problems import ImportFailed, Loc, Problem, json_path
from therapy_scheduler.importing.queries import Progress
from therapy_scheduler.importing.schema import ImportDocument
from therapy_scheduler.infra import changes
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import (
    Authorization,
    AuthorizationService,
    AvailabilityWindow,
    Caseload,
    Client,
    Location,
    Organization,
    Session,
    Therapist,
    TimeOff,
    User,
)

__all__ = [
    "ImportFailed",
    "ImportReport",
    "import_document",
    "json_path",
    "parse_document",
    "run_import",
    "validate_document",
]

CONSUMING = frozenset({"scheduled", "in_progress", "completed"})
KINDS = tuple(ImportDocument.model_fields)


@dataclass
class Validated:
    document: ImportDocument
    problems: list[Problem] = field(default_factory=list)
    # Ids of records that were themselves invalid: references to them are not reported twice.
    invalid_ids: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    # For each kind, the source index of every valid record (invalid ones are left out of `document`).
    positions: dict[str, list[int]] = field(default_factory=dict)


def _message(error: Any) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def _record_model(kind: str) -> type[BaseModel]:
    annotation = ImportDocument.model_fields[kind].annotation
    model: type[BaseModel] = annotation.__args__[0]  # type: ignore[union-attr]
    return model


def validate_document(raw: Any) -> Validated:
    """Each record validated on its own; the valid ones form the document, the others are problems."""
    if not isinstance(raw, dict):
        return Validated(ImportDocument(), [Problem(("document",), "must be a JSON object")])
    problems: list[Problem] = []
    invalid: dict[str, set[uuid.UUID]] = {}
    records: dict[str, list[Any]] = {}
    positions: dict[str, list[int]] = {}
    for key in raw:
        if key not in KINDS:
            problems.append(
                Problem((str(key),), f"unknown key (expected one of {', '.join(KINDS)})")
            )
    for kind in KINDS:
        items = raw.get(kind, [])
        if not isinstance(items, list):
            problems.append(Problem((kind,), "must be a list"))
            continue
        model = _record_model(kind)
        valid: list[Any] = []
        positions[kind] = []
        for i, item in enumerate(items):
            try:
                valid.append(model.model_validate(item))
                positions[kind].append(i)
            except ValidationError as exc:
                problems += [Problem((kind, i, *e["loc"]), _message(e)) for e in exc.errors()]
                bad_id = _raw_id(item)
                if bad_id is not None:
                    invalid.setdefault(kind, set()).add(bad_id)
        records[kind] = valid
    document = ImportDocument.model_construct(None, **records)
    return Validated(document, problems, invalid, positions)


def _raw_id(item: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item["id"]))
    except (TypeError, KeyError, ValueError):
        return None


def parse_document(raw: Any) -> ImportDocument:
    """The validated document; ImportFailed lists every shape problem with its JSON path."""
    validated = validate_document(raw)
    if validated.problems:
        raise ImportFailed(validated.problems)
    return validated.document


@dataclass
class ImportReport:
    counts: dict[str, int]
    dry_run: bool


class _DryRun(Exception):
    """Raised inside the import's transaction so that a dry run leaves nothing behind."""


async def run_import(
    db: Database,
    raw: Any,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    scope_org: uuid.UUID | None = None,
    source_problems: list[Problem] | None = None,
    before_commit: Callable[[AsyncConnection, dict[str, int]], Any] | None = None,
) -> ImportReport:
    """Validate and import `raw` in one transaction. Every problem found is raised at once as
    ImportFailed (shape problems first, then references); with `dry_run` the writes are made and rolled
    back, so that the report also covers what only the database can check. `source_problems` are
    problems already found while reading the source (e.g. a malformed CSV cell)."""
    validated = validate_document(raw)
    counts: dict[str, int] = {}
    try:
        async with db.write() as conn:
            counts = await import_document(
                conn,
                validated.document,
                progress=progress,
                known_problems=[*(source_problems or []), *validated.problems],
                invalid_ids=validated.invalid_ids,
                positions=validated.positions,
                scope_org=scope_org,
            )
            if before_commit is not None and not dry_run:
                await before_commit(conn, counts)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except IntegrityError as exc:
        # Checks run before the writes; this is the last line of defence (e.g. a concurrent writer).
        constraint = str(exc.orig).splitlines()[0][:200]
        raise ImportFailed([Problem((), f"the database refused the import: {constraint}")]) from exc
    return ImportReport(counts, dry_run)


def _organizations_changed(
    doc: ImportDocument, refs: References, scope_org: uuid.UUID | None
) -> set[uuid.UUID]:
    """Every organization whose data the import changes (their versions are bumped at COMMIT,
    infra/changes.py): those of the document's records and of the people they refer to."""
    found: set[uuid.UUID] = {o.id for o in doc.organizations}
    for records in (doc.locations, doc.therapists, doc.clients, doc.users):
        found.update(r.organization_id for r in records)
    found.update(o for o in refs.therapist_org.values() if o is not None)
    found.update(o for o in refs.client_org.values() if o is not None)
    if scope_org is not None:
        found.add(scope_org)
    return found


async def import_document(
    conn: AsyncConnection,
    doc: ImportDocument,
    *,
    progress: Progress | None = None,
    known_problems: list[Problem] | None = None,
    invalid_ids: dict[str, set[uuid.UUID]] | None = None,
    positions: dict[str, list[int]] | None = None,
    scope_org: uuid.UUID | None = None,
) -> dict[str, int]:
    """Upsert every record of `doc` inside the caller's transaction. Problems (those already found in
    the records' shapes, then every invalid reference, foreign id, duplicate e-mail or overlap) raise
    ImportFailed before anything is written."""
    refs = References(conn, doc, invalid_ids=invalid_ids, scope_org=scope_org)
    found = [_at_source(p, positions or {}) for p in await refs.check()]
    problems = [*(known_problems or []), *found]
    if problems:
        raise ImportFailed(sorted(problems, key=_problem_order))
    for organization_id in _organizations_changed(doc, refs, scope_org):
        changes.touch(conn, organization_id)
    step = progress or (lambda _kind, _done, _total: None)
    counts: dict[str, int] = {}

    await queries.upsert_rows(
        conn,
        Organization,
        [
            {
                "id": o.id,
                "name": o.name,
                "time_zone": o.time_zone,
                "settings": o.settings.model_dump(mode="json"),
                "created_at": utcnow(),
            }
            for o in doc.organizations
        ],
        step,
        "organizations",
    )
    await queries.upsert_rows(
        conn, Location, [loc.model_dump() for loc in doc.locations], step, "locations"
    )
    await queries.upsert_rows(
        conn,
        Therapist,
        [
            {**t.model_dump(exclude={"availability", "time_off"}), "created_at": utcnow()}
            for t in doc.therapists
        ],
        step,
        "therapists",
    )
    await _replace_availability(conn, doc, refs)
    await queries.upsert_rows(
        conn,
        Client,
        [{**c.model_dump(exclude={"therapist_ids"}), "created_at": utcnow()} for c in doc.clients],
        step,
        "clients",
    )
    await _replace_caseloads(conn, doc, refs)
    await queries.upsert_rows(
        conn,
        User,
        [{**u.model_dump(), "email": u.email.lower(), "created_at": utcnow()} for u in doc.users],
        step,
        "users",
    )
    await queries.upsert_rows(
        conn,
        Authorization,
        [
            {
                **a.model_dump(exclude={"services"}),
                "organization_id": refs.client_org[a.client_id],
                "created_at": utcnow(),
            }
            for a in doc.authorizations
        ],
        step,
        "authorizations",
    )
    await _replace_services(conn, doc, refs)
    unit_minutes = await refs.unit_minutes()
    now = utcnow()
    session_rows = []
    for s in doc.sessions:
        code = s.service_code or refs.default_service(s.therapist_id)
        minutes = (s.end_time - s.start_time).total_seconds() / 60
        per_unit = unit_minutes.get((s.authorization_id, code)) or default_unit_minutes(code)
        session_rows.append(
            {
                **s.model_dump(exclude={"service_code"}),
                "organization_id": refs.therapist_org[s.therapist_id],
                "service_code": code,
                "units": session_units(minutes, per_unit),
                "consumes_units": s.status in CONSUMING,
                "created_at": now,
                "updated_at": now,
            }
        )
    await queries.upsert_rows(conn, Session, session_rows, step, "sessions")
    for kind in ImportDocument.model_fields:
        counts[kind] = len(getattr(doc, kind))
    return counts


async def _replace_availability(
    conn: AsyncConnection, doc: ImportDocument, refs: References
) -> None:
    windows: list[dict[str, Any]] = []
    ranges: list[dict[str, Any]] = []
    for i, t in enumerate(doc.therapists):
        if t.availability is not None:
            await queries.delete_children(conn, AvailabilityWindow.therapist_id, t.id)
            windows += [
                {
                    "id": uuid.uuid4(),
                    "organization_id": t.organization_id,
                    "therapist_id": t.id,
                    "weekday": WEEKDAYS.index(w.weekday),
                    "start_local": w.start,
                    "end_local": w.end,
                }
                for w in t.availability
            ]
        if t.time_off is not None:
            await queries.delete_children(conn, TimeOff.therapist_id, t.id)
            for j, r in enumerate(t.time_off):
                start, end = refs.time_off[(i, j)]
                ranges.append(
                    {
                        "id": uuid.uuid4(),
                        "organization_id": t.organization_id,
                        "therapist_id": t.id,
                        "kind": r.kind,
                        "start_time": start,
                        "end_time": end,
                    }
                )
    await queries.insert_rows(conn, AvailabilityWindow, windows)
    await queries.insert_rows(conn, TimeOff, ranges)


async def _replace_caseloads(conn: AsyncConnection, doc: ImportDocument, refs: References) -> None:
    rows = []
    for c in doc.clients:
        if c.therapist_ids is None:
            continue
        await queries.delete_children(conn, Caseload.client_id, c.id)
        rows += [
            {"therapist_id": t, "client_id": c.id, "organization_id": c.organization_id}
            for t in dict.fromkeys(c.therapist_ids)
        ]
    await queries.insert_rows(conn, Caseload, rows)


async def _replace_services(conn: AsyncConnection, doc: ImportDocument, refs: References) -> None:
    rows = []
    for a in doc.authorizations:
        await queries.delete_children(conn, AuthorizationService.authorization_id, a.id)
        rows += [
            {
                **s.columns(),
                "authorization_id": a.id,
                "organization_id": refs.client_org[a.client_id],
            }
            for s in a.services
        ]
    await queries.insert_rows(conn, AuthorizationService, rows)


def _problem_order(problem: Problem) -> tuple[int, int, str]:
    """Problems in document order: by kind, then record, then path."""
    loc: Loc = problem.loc
    kind = KINDS.index(str(loc[0])) if loc and loc[0] in KINDS else -1
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else -1
    return (kind, index, json_path(loc))


def _at_source(problem: Problem, positions: dict[str, list[int]]) -> Problem:
    """A problem of the validated document, placed at its record's index in the source."""

    def place(loc: Loc | None) -> Loc | None:
        if loc is None or len(loc) < 2 or not isinstance(loc[1], int) or loc[0] not in positions:
            return loc
        return (loc[0], positions[str(loc[0])][loc[1]], *loc[2:])

    return Problem(place(problem.loc) or (), problem.message, place(problem.other))
