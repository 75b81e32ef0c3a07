"""Checks of an import document that need the database. Every problem is collected (not just the
first), so that a dry run can list them all at once.

* every id a record names exists (in the file or the database) in the same organization;
* a record id already used by another organization is refused (an import never moves or overwrites
  another organization's rows);
* e-mails of users are unique, within the file and against the database;
* time off given in local time exists in the therapist's zone;
* imported sessions never overlap one another or stored sessions of the same therapist or client.

With `scope_org` (the import API), the database is searched only within that organization, so another
organization's ids are answered exactly like ids that do not exist.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from therapy_scheduler.importing import queries
from therapy_scheduler.importing.problems import Loc, Problem
from therapy_scheduler.importing.schema import ImportDocument
from therapy_scheduler.kit.time import NonexistentLocalTime, resolve_local
from therapy_scheduler.models import (
    Authorization,
    Client,
    Location,
    Organization,
    Session,
    Therapist,
    User,
)

# The organization of a record that was itself invalid: references to it are not reported again.
Org = uuid.UUID | None
_MISSING: Any = object()
OWNED = (("locations", Location), ("therapists", Therapist), ("clients", Client), ("users", User))


class References:
    def __init__(
        self,
        conn: AsyncConnection,
        doc: ImportDocument,
        *,
        invalid_ids: dict[str, set[uuid.UUID]] | None = None,
        scope_org: uuid.UUID | None = None,
    ) -> None:
        self.conn = conn
        self.doc = doc
        self.invalid = defaultdict(set, invalid_ids or {})
        self.scope_org = scope_org
        self.problems: list[Problem] = []
        self.therapist_org: dict[uuid.UUID, Org] = {}
        self.client_org: dict[uuid.UUID, Org] = {}
        self.org_service: dict[uuid.UUID, str | None] = {}
        self.time_off: dict[tuple[int, int], tuple[datetime, datetime]] = {}

    def add(self, loc: Loc, message: str, other: Loc | None = None) -> None:
        self.problems.append(Problem(loc, message, other))

    async def _existing(
        self, model: Any, ids: Iterable[uuid.UUID], *cols: Any, scoped: bool = True
    ) -> dict[uuid.UUID, Any]:
        org = self.scope_org if scoped else None
        return await queries.existing_rows(self.conn, model, ids, cols, organization_id=org)

    async def check(self) -> list[Problem]:
        await self._organizations()
        await self._foreign_ids()
        await self._people()
        await self._links()
        await self._emails()
        self._time_off()
        await self._overlaps()
        return self.problems

    async def _organizations(self) -> None:
        d = self.doc
        orgs: dict[uuid.UUID, str | None] = {}
        for i, o in enumerate(d.organizations):
            if self.scope_org is not None:
                self.add(("organizations", i), "organizations cannot be imported here")
            else:
                orgs[o.id] = o.settings.default_service_code
        for oid in self.invalid["organizations"]:
            orgs.setdefault(oid, None)
        wanted = {r.organization_id for kind, _ in OWNED for r in getattr(d, kind)}
        for oid, row in (
            await self._existing(
                Organization, wanted - set(orgs), Organization.settings, scoped=False
            )
        ).items():
            if self.scope_org is None or oid == self.scope_org:
                orgs[oid] = (row.settings or {}).get("default_service_code", "97153")
        self.org_service = orgs
        for kind, _ in OWNED:
            for i, r in enumerate(getattr(d, kind)):
                if r.organization_id not in orgs:
                    self.add(
                        (kind, i, "organization_id"), f"unknown organization {r.organization_id}"
                    )

    async def _foreign_ids(self) -> None:
        """Ids already used by another organization's rows (looked up across organizations)."""
        for kind, model in OWNED:
            records = getattr(self.doc, kind)
            stored = await self._existing(
                model, [r.id for r in records], model.organization_id, scoped=False
            )
            for i, r in enumerate(records):
                row = stored.get(r.id)
                if row is not None and row.organization_id != r.organization_id:
                    self.add((kind, i, "id"), "id already in use")

    async def _people(self) -> None:
        d = self.doc
        self.therapist_org = {t.id: t.organization_id for t in d.therapists}
        self.client_org = {c.id: c.organization_id for c in d.clients}
        for tid in self.invalid["therapists"]:
            self.therapist_org.setdefault(tid, None)
        for cid in self.invalid["clients"]:
            self.client_org.setdefault(cid, None)
        t_ids = {x for c in d.clients for x in (c.therapist_ids or [])}
        t_ids |= {u.therapist_id for u in d.users if u.therapist_id}
        t_ids |= {s.therapist_id for s in d.sessions}
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

    def _same_org(
        self, loc: Loc, org: Org, table: dict[uuid.UUID, Org], ref: uuid.UUID, what: str
    ) -> None:
        if org is None or (ref in table and table[ref] is None):
            return  # the record or its target was already reported as invalid
        if table.get(ref) != org:
            self.add(loc, f"unknown {what} {ref}")

    async def _links(self) -> None:
        d = self.doc
        locations: dict[uuid.UUID, Org] = {loc.id: loc.organization_id for loc in d.locations}
        for lid in self.invalid["locations"]:
            locations.setdefault(lid, None)
        l_ids = {s.location_id for s in d.sessions if s.location_id}
        for lid, row in (
            await self._existing(Location, l_ids - set(locations), Location.organization_id)
        ).items():
            locations[lid] = row.organization_id
        auths: dict[uuid.UUID, uuid.UUID | None] = {a.id: a.client_id for a in d.authorizations}
        for aid in self.invalid["authorizations"]:
            auths.setdefault(aid, None)
        a_ids = {s.authorization_id for s in d.sessions if s.authorization_id}
        for aid, row in (
            await self._existing(Authorization, a_ids - set(auths), Authorization.client_id)
        ).items():
            auths[aid] = row.client_id
        stored_auths = await self._existing(
            Authorization,
            [a.id for a in d.authorizations],
            Authorization.organization_id,
            scoped=False,
        )
        stored_sessions = await self._existing(
            Session, [s.id for s in d.sessions], Session.organization_id, scoped=False
        )

        for i, c in enumerate(d.clients):
            for j, tid in enumerate(c.therapist_ids or []):
                loc: Loc = ("clients", i, "therapist_ids", j)
                self._same_org(loc, c.organization_id, self.therapist_org, tid, "therapist")
        for i, u in enumerate(d.users):
            if u.therapist_id:
                self._same_org(
                    ("users", i, "therapist_id"), u.organization_id, self.therapist_org,
                    u.therapist_id, "therapist",
                )  # fmt: skip
        for i, a in enumerate(d.authorizations):
            if a.client_id not in self.client_org:
                self.add(("authorizations", i, "client_id"), f"unknown client {a.client_id}")
            elif (stored := stored_auths.get(a.id)) is not None and self.client_org[
                a.client_id
            ] not in (None, stored.organization_id):
                self.add(("authorizations", i, "id"), "id already in use")
        for i, s in enumerate(d.sessions):
            if s.therapist_id not in self.therapist_org:
                self.add(("sessions", i, "therapist_id"), f"unknown therapist {s.therapist_id}")
                continue
            org = self.therapist_org[s.therapist_id]
            stored = stored_sessions.get(s.id)
            if stored is not None and org is not None and stored.organization_id != org:
                self.add(("sessions", i, "id"), "id already in use")
            self._same_org(
                ("sessions", i, "client_id"), org, self.client_org, s.client_id, "client"
            )
            if s.location_id:
                self._same_org(
                    ("sessions", i, "location_id"), org, locations, s.location_id, "location"
                )
            if s.authorization_id:
                owner = auths.get(s.authorization_id, _MISSING)
                if owner is not None and owner != s.client_id:
                    self.add(
                        ("sessions", i, "authorization_id"),
                        f"unknown authorization {s.authorization_id} for this client",
                    )

    async def _emails(self) -> None:
        first: dict[str, int] = {}
        for i, u in enumerate(self.doc.users):
            email = u.email.lower()
            if email in first:
                self.add(("users", i, "email"), f"duplicate email {email} (also {{other}})",
                         ("users", first[email]))  # fmt: skip
            else:
                first[email] = i
        for user_id, email in await queries.users_by_email(self.conn, list(first)):
            i = first[email]
            if self.doc.users[i].id != user_id:
                self.add(("users", i, "email"), "e-mail already used by another user")

    def _time_off(self) -> None:
        for i, t in enumerate(self.doc.therapists):
            tz = ZoneInfo(t.time_zone)
            for j, r in enumerate(t.time_off or []):
                try:
                    self.time_off[(i, j)] = (resolve_local(r.start, tz), resolve_local(r.end, tz))
                except NonexistentLocalTime as exc:
                    self.add(("therapists", i, "time_off", j), exc.message)

    async def _overlaps(self) -> None:
        """Imported sessions are history, but never a double booking: not among themselves, not with
        sessions already in the database."""
        sessions = self.doc.sessions
        incoming = [(i, s) for i, s in enumerate(sessions) if s.status != "cancelled"]
        if not incoming:
            return
        ids = {s.id for s in sessions}
        lo = min(s.start_time for _, s in incoming)
        hi = max(s.end_time for _, s in incoming)
        for field in ("therapist_id", "client_id"):
            column = getattr(Session, field)
            timeline: dict[Any, list[tuple[datetime, datetime, Loc | str]]] = defaultdict(list)
            people = list({getattr(s, field) for _, s in incoming})
            for r in await queries.sessions_of(self.conn, column, people, lo, hi):
                if r.id not in ids:
                    timeline[r[1]].append((r.start_time, r.end_time, f"existing session {r.id}"))
            for i, s in incoming:
                timeline[getattr(s, field)].append((s.start_time, s.end_time, ("sessions", i)))
            who = field.removesuffix("_id")
            for entries in timeline.values():
                entries.sort(key=lambda e: (e[0], e[1], str(e[2])))
                latest: tuple[datetime, Loc | str] | None = None
                for start, end, label in entries:
                    if latest is not None and start < latest[0]:
                        self._overlap(label, latest[1], who)
                    if latest is None or end > latest[0]:
                        latest = (end, label)

    def _overlap(self, a: Loc | str, b: Loc | str, who: str) -> None:
        mine, other = (a, b) if isinstance(a, tuple) else (b, a)
        if not isinstance(mine, tuple):
            return
        if isinstance(other, tuple):
            first, second = sorted([mine, other], key=lambda loc: int(loc[1]))
            self.add(first, f"overlaps {{other}} of the same {who}", second)
        else:
            self.add(mine, f"overlaps {other} of the same {who}")

    def default_service(self, therapist_id: uuid.UUID) -> str:
        org = self.therapist_org.get(therapist_id)
        return (self.org_service.get(org) if org else None) or "97153"

    async def unit_minutes(self) -> dict[tuple[uuid.UUID | None, str], int]:
        a_ids = {s.authorization_id for s in self.doc.sessions if s.authorization_id}
        return await queries.unit_minutes_of(self.conn, list(a_ids))
