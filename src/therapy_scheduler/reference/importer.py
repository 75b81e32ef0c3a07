"""Bulk import of a clinic (SPEC §8): one transaction, upsert by id, errors that name the JSON path."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from sqlalchemy import JSON, Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.errors import AppError
from therapy_scheduler.kit.time import NonexistentLocalTime, resolve_local, utcnow
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
from therapy_scheduler.reference.authorizations import default_unit_minutes, session_units
from therapy_scheduler.reference.import_schema import ImportDocument
from therapy_scheduler.reference.vocab import WEEKDAYS

Progress = Callable[[str, int, int], None]
CHUNK = 1000
# On PostgreSQL, large batches go through COPY into a temporary table and one INSERT … ON CONFLICT
# per COPY_CHUNK rows: the same upsert, several times faster than multi-row INSERTs.
COPY_THRESHOLD = 5000
COPY_CHUNK = 20_000
CONSUMING = frozenset({"scheduled", "in_progress", "completed"})


class ImportFailed(AppError):
    status = 400
    code = "IMPORT_INVALID"


def parse_document(raw: Any) -> ImportDocument:
    """Validate the document's shape; the first problem is reported with its JSON path."""
    try:
        return ImportDocument.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{json_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
        raise ImportFailed(problems[0], details={"problems": problems[:50]}) from exc


def json_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


async def import_document(
    conn: AsyncConnection, doc: ImportDocument, *, progress: Progress | None = None
) -> dict[str, int]:
    """Upsert every record of `doc` inside the caller's transaction; raise ImportFailed on the first
    invalid reference or overlap (the caller's rollback then leaves the database untouched)."""
    refs = _References(conn, doc)
    await refs.check()
    step = progress or (lambda _kind, _done, _total: None)
    counts: dict[str, int] = {}

    await _upsert(
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
    await _upsert(conn, Location, [loc.model_dump() for loc in doc.locations], step, "locations")
    await _upsert(
        conn,
        Therapist,
        [
            {**t.model_dump(exclude={"availability", "time_off"}), "created_at": utcnow()}
            for t in doc.therapists
        ],
        step,
        "therapists",
    )
    await _replace_availability(conn, doc)
    await _upsert(
        conn,
        Client,
        [{**c.model_dump(exclude={"therapist_ids"}), "created_at": utcnow()} for c in doc.clients],
        step,
        "clients",
    )
    await _replace_caseloads(conn, doc, refs)
    await _upsert(
        conn,
        User,
        [{**u.model_dump(), "email": u.email.lower(), "created_at": utcnow()} for u in doc.users],
        step,
        "users",
    )
    await _upsert(
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
    await _check_overlaps(conn, doc)
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
    await _upsert(conn, Session, session_rows, step, "sessions")
    for kind in ImportDocument.model_fields:
        counts[kind] = len(getattr(doc, kind))
    return counts


async def _upsert(
    conn: AsyncConnection, model: Any, rows: list[dict[str, Any]], progress: Progress, kind: str
) -> None:
    if not rows:
        return
    table: Table = model.__table__
    keys = [c.name for c in table.primary_key.columns]
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        await _copy_upsert(conn, table, keys, rows, progress, kind)
        return
    upsert_into = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        statement = upsert_into(table)
        updates = {
            name: statement.excluded[name]
            for name in chunk[0]
            if name not in keys and name != "created_at"
        }
        await conn.execute(
            statement.on_conflict_do_update(index_elements=keys, set_=updates), chunk
        )
        progress(kind, min(start + CHUNK, len(rows)), len(rows))


async def _copy_upsert(
    conn: AsyncConnection,
    table: Table,
    keys: list[str],
    rows: list[dict[str, Any]],
    progress: Progress,
    kind: str,
) -> None:
    """PostgreSQL bulk upsert, in the caller's transaction: constraints (foreign keys, the exclusion
    constraints against double booking) are checked exactly as for a plain INSERT."""
    columns = list(rows[0])
    staging = f"import_{table.name}_{uuid.uuid4().hex[:8]}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(
        f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys and c != "created_at"
    )
    # Runs through SQLAlchemy first, so the driver's transaction is open before COPY uses it.
    await conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    types = {c.name: c.type for c in table.columns}
    for start in range(0, len(rows), COPY_CHUNK):
        chunk = rows[start : start + COPY_CHUNK]
        await driver.copy_records_to_table(
            staging,
            columns=columns,
            records=[tuple(_copy_value(types[c], r[c]) for c in columns) for r in chunk],
        )
        # Identifiers come from the table definition and our own record models, never from input.
        await conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{staging}" '  # noqa: S608
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        await conn.exec_driver_sql(f'TRUNCATE "{staging}"')
        progress(kind, min(start + COPY_CHUNK, len(rows)), len(rows))


def _copy_value(column_type: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)
    if isinstance(column_type, JSON) and value is not None:
        return orjson.dumps(value).decode()
    return value


async def _replace_availability(conn: AsyncConnection, doc: ImportDocument) -> None:
    windows: list[dict[str, Any]] = []
    ranges: list[dict[str, Any]] = []
    for i, t in enumerate(doc.therapists):
        tz = ZoneInfo(t.time_zone)
        if t.availability is not None:
            await conn.execute(
                delete(AvailabilityWindow).where(AvailabilityWindow.therapist_id == t.id)
            )
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
            await conn.execute(delete(TimeOff).where(TimeOff.therapist_id == t.id))
            for j, r in enumerate(t.time_off):
                try:
                    start, end = resolve_local(r.start, tz), resolve_local(r.end, tz)
                except NonexistentLocalTime as exc:
                    raise ImportFailed(f"therapists[{i}].time_off[{j}]: {exc.message}") from exc
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
    model: Any
    for model, rows in ((AvailabilityWindow, windows), (TimeOff, ranges)):
        for offset in range(0, len(rows), CHUNK):
            await conn.execute(insert(model), rows[offset : offset + CHUNK])


async def _replace_caseloads(conn: AsyncConnection, doc: ImportDocument, refs: _References) -> None:
    rows = []
    for c in doc.clients:
        if c.therapist_ids is None:
            continue
        await conn.execute(delete(Caseload).where(Caseload.client_id == c.id))
        rows += [
            {"therapist_id": t, "client_id": c.id, "organization_id": c.organization_id}
            for t in dict.fromkeys(c.therapist_ids)
        ]
    if rows:
        await conn.execute(insert(Caseload), rows)


async def _replace_services(conn: AsyncConnection, doc: ImportDocument, refs: _References) -> None:
    rows = []
    for a in doc.authorizations:
        await conn.execute(
            delete(AuthorizationService).where(AuthorizationService.authorization_id == a.id)
        )
        rows += [
            {
                **s.model_dump(),
                "authorization_id": a.id,
                "organization_id": refs.client_org[a.client_id],
            }
            for s in a.services
        ]
    if rows:
        await conn.execute(insert(AuthorizationService), rows)


async def _check_overlaps(conn: AsyncConnection, doc: ImportDocument) -> None:
    """Imported sessions are history, but never a double booking: not among themselves, not with
    sessions already in the database."""
    incoming = [(i, s) for i, s in enumerate(doc.sessions) if s.status != "cancelled"]
    if not incoming:
        return
    ids = {s.id for s in doc.sessions}
    lo = min(s.start_time for _, s in incoming)
    hi = max(s.end_time for _, s in incoming)
    for field in ("therapist_id", "client_id"):
        column = getattr(Session, field)
        people = {getattr(s, field) for _, s in incoming}
        existing: list[tuple[datetime, datetime, str, Any]] = []
        for chunk in _chunks(list(people), 500):
            rows = await conn.execute(
                select(Session.id, column, Session.start_time, Session.end_time).where(
                    column.in_(chunk),
                    Session.status != "cancelled",
                    Session.start_time < hi,
                    Session.end_time > lo,
                )
            )
            existing += [
                (r.start_time, r.end_time, f"existing session {r.id}", r[1])
                for r in rows
                if r.id not in ids
            ]
        timeline: dict[Any, list[tuple[datetime, datetime, str]]] = defaultdict(list)
        for start, end, label, who in existing:
            timeline[who].append((start, end, label))
        for i, s in incoming:
            timeline[getattr(s, field)].append((s.start_time, s.end_time, f"sessions[{i}]"))
        who_word = field.removesuffix("_id")
        for entries in timeline.values():
            entries.sort()
            latest_end, latest_label = None, ""
            for start, end, label in entries:
                if latest_end is not None and start < latest_end:
                    first, second = sorted([label, latest_label], key=_file_first)
                    raise ImportFailed(f"{first}: overlaps {second} of the same {who_word}")
                if latest_end is None or end > latest_end:
                    latest_end, latest_label = end, label


def _file_first(label: str) -> tuple[int, str]:
    return (0 if label.startswith("sessions[") else 1, label)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _References:
    """Checks that every id a record names exists (in the file or the database) in the same
    organization, and remembers each person's organization."""

    def __init__(self, conn: AsyncConnection, doc: ImportDocument) -> None:
        self.conn = conn
        self.doc = doc
        self.therapist_org: dict[uuid.UUID, uuid.UUID] = {}
        self.client_org: dict[uuid.UUID, uuid.UUID] = {}
        self.org_service: dict[uuid.UUID, str] = {}

    async def _existing(self, model: Any, ids: set[uuid.UUID], *cols: Any) -> dict[uuid.UUID, Any]:
        found: dict[uuid.UUID, Any] = {}
        for chunk in _chunks(list(ids), 500):
            for r in await self.conn.execute(select(model.id, *cols).where(model.id.in_(chunk))):
                found[r[0]] = r
        return found

    async def check(self) -> None:
        d = self.doc
        orgs = {o.id: o.settings.default_service_code for o in d.organizations}
        owned: list[Any] = [*d.locations, *d.therapists, *d.clients, *d.users]
        wanted = {r.organization_id for r in owned}
        for oid, row in (
            await self._existing(Organization, wanted - set(orgs), Organization.settings)
        ).items():
            orgs[oid] = (row.settings or {}).get("default_service_code", "97153")
        self.org_service = orgs
        for kind in ("locations", "therapists", "clients", "users"):
            records: list[Any] = getattr(d, kind)
            for i, r in enumerate(records):
                if r.organization_id not in orgs:
                    raise ImportFailed(
                        f"{kind}[{i}].organization_id: unknown organization {r.organization_id}"
                    )

        self.therapist_org = {t.id: t.organization_id for t in d.therapists}
        self.client_org = {c.id: c.organization_id for c in d.clients}
        locations = {loc.id: loc.organization_id for loc in d.locations}
        t_ids = {x for c in d.clients for x in (c.therapist_ids or [])}
        t_ids |= {u.therapist_id for u in d.users if u.therapist_id} | {
            s.therapist_id for s in d.sessions
        }
        for tid, row in (
            await self._existing(
                Therapist, t_ids - set(self.therapist_org), Therapist.organization_id
            )
        ).items():
            self.therapist_org[tid] = row.organization_id
        c_ids = {a.client_id for a in d.authorizations} | {s.client_id for s in d.sessions}
        for cid, row in (
            await self._existing(Client, c_ids - set(self.client_org), Client.organization_id)
        ).items():
            self.client_org[cid] = row.organization_id
        l_ids = {s.location_id for s in d.sessions if s.location_id}
        for lid, row in (
            await self._existing(Location, l_ids - set(locations), Location.organization_id)
        ).items():
            locations[lid] = row.organization_id
        auths = {a.id: a.client_id for a in d.authorizations}
        a_ids = {s.authorization_id for s in d.sessions if s.authorization_id}
        for aid, row in (
            await self._existing(Authorization, a_ids - set(auths), Authorization.client_id)
        ).items():
            auths[aid] = row.client_id

        def same_org(
            path: str, org: uuid.UUID, table: dict[uuid.UUID, uuid.UUID], ref: uuid.UUID, what: str
        ) -> None:
            if table.get(ref) != org:
                raise ImportFailed(f"{path}: unknown {what} {ref}")

        for i, c in enumerate(d.clients):
            for j, tid in enumerate(c.therapist_ids or []):
                same_org(
                    f"clients[{i}].therapist_ids[{j}]",
                    c.organization_id,
                    self.therapist_org,
                    tid,
                    "therapist",
                )
        for i, u in enumerate(d.users):
            if u.therapist_id:
                same_org(
                    f"users[{i}].therapist_id",
                    u.organization_id,
                    self.therapist_org,
                    u.therapist_id,
                    "therapist",
                )
        for i, a in enumerate(d.authorizations):
            if a.client_id not in self.client_org:
                raise ImportFailed(f"authorizations[{i}].client_id: unknown client {a.client_id}")
        for i, s in enumerate(d.sessions):
            if s.therapist_id not in self.therapist_org:
                raise ImportFailed(
                    f"sessions[{i}].therapist_id: unknown therapist {s.therapist_id}"
                )
            org = self.therapist_org[s.therapist_id]
            same_org(f"sessions[{i}].client_id", org, self.client_org, s.client_id, "client")
            if s.location_id:
                same_org(f"sessions[{i}].location_id", org, locations, s.location_id, "location")
            if s.authorization_id and auths.get(s.authorization_id) != s.client_id:
                raise ImportFailed(
                    f"sessions[{i}].authorization_id: unknown authorization "
                    f"{s.authorization_id} for this client"
                )
        emails = [u.email.lower() for u in d.users]
        if len(set(emails)) != len(emails):
            dup = next(e for e in emails if emails.count(e) > 1)
            raise ImportFailed(f"users[{emails.index(dup)}].email: duplicate email {dup}")

    def default_service(self, therapist_id: uuid.UUID) -> str:
        return self.org_service.get(self.therapist_org[therapist_id], "97153")

    async def unit_minutes(self) -> dict[tuple[uuid.UUID | None, str], int]:
        a_ids = {s.authorization_id for s in self.doc.sessions if s.authorization_id}
        out: dict[tuple[uuid.UUID | None, str], int] = {}
        for chunk in _chunks(list(a_ids), 500):
            for r in await self.conn.execute(
                select(
                    AuthorizationService.authorization_id,
                    AuthorizationService.service_code,
                    AuthorizationService.unit_minutes,
                ).where(AuthorizationService.authorization_id.in_(chunk))
            ):
                out[(r.authorization_id, r.service_code)] = r.unit_minutes
        return out
