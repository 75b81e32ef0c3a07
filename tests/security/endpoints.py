"""The one table of endpoints and callers that the security tests are generated from.

To cover a new endpoint (the booking endpoints: POST /sessions/hold, /sessions/confirm, /sessions/cancel):
1. add one `Endpoint` row to ENDPOINTS (a request every role may send: used by the header, PHI-log and
   route-coverage tests);
2. add one `IdParameter` row to ID_PARAMETERS per place the endpoint takes an id (a therapist, client or
   session id, or a hold key), with a builder that turns an id into the request and the status an
   allowed caller gets. Every role x {own, other organization, same organization out of scope,
   nonexistent} case is then generated, and the row counts of every table are compared around the
   refused ones. Example (booking branch):

       IdParameter("cancel session_id", "POST", "/sessions/cancel", "session",
                   lambda i: {"json": {"session_id": i, "reason": "other"}}, own_status=200)

   Refused cases must change no row of any table; the allowed case runs first and may write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tests.fixtures import (
    A1,
    C1,
    C2,
    CB,
    L1,
    SB,
    T1,
    T2,
    TB,
    U_SCHED,
    S,
)

Kind = Literal["therapist", "client", "session"]
Request = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    request: Request  # httpx keyword arguments (params / json) of a valid request
    authenticated: bool = True
    # Status each role gets (default 200); refusals (>= 400) must change no row.
    statuses: dict[str, int] | None = None
    writes: bool = False  # an allowed (2xx) answer may write rows

    def status_for(self, role: str) -> int:
        return (self.statuses or {}).get(role, 200)


DAYS = {"start_date": "2027-03-01", "end_date": "2027-03-31"}

ADMIN_ONLY = {"scheduler": 403, "therapist": 403, "therapist2": 403}
STAFF_ONLY = {"therapist": 403, "therapist2": 403}
MISSING = str(uuid.UUID(int=0xDEAD0009))  # an id no table holds
# A future slot (a Monday, 14:00-15:00 New York) inside every own therapist's hours (T1: 09:00-17:00
# New York; T2: 08:00-12:00 and 13:00-16:00 Chicago; TB: 09:00-17:00 Los Angeles) and every own
# client's authorization (A1 of C1; A2 of C2 ends 2027-03-05; AB of CB).
SLOT = {"start_time": "2027-03-01T14:00:00", "end_time": "2027-03-01T15:00:00"}
NY = "America/New_York"
CREATED_NAMES = frozenset({"New Person", "New Client"})  # people the create rows below add


ROLES = ("admin", "scheduler", "therapist", "therapist2", "admin_b")
ADMIN_ROLES = frozenset({"admin", "admin_b"})
STAFF_ROLES = frozenset({"admin", "admin_b", "scheduler"})
EVERYONE = frozenset(ROLES)


def _admin(
    name: str,
    method: str,
    path: str,
    request: Request | None = None,
    *,
    who: frozenset[str] = ADMIN_ROLES,
    ok: int = 200,
    org_a: bool = False,
    missing: bool = False,
    writes: bool = False,
    hidden_from_therapist2: bool = False,
) -> Endpoint:
    """A route of the admin API, its status pinned per role. Roles outside `who` get 403 whatever the
    id; within it: `ok`, or 404 where the request names an id the caller may not see: an org-A id for
    the other organization's admin (`org_a`), T1's calendar for therapist2
    (`hidden_from_therapist2`), or an id nobody has (`missing`)."""
    statuses: dict[str, int] = {}
    for role in ROLES:
        if role not in who:
            statuses[role] = 403
        elif (
            missing
            or (org_a and role == "admin_b")
            or (hidden_from_therapist2 and role == "therapist2")
        ):
            statuses[role] = 404
        else:
            statuses[role] = ok
    return Endpoint(name, method, path, request or {}, statuses=statuses, writes=writes)


NEW_ENDPOINTS: list[Endpoint] = [
    # Booking and lifecycle. The hold names T1/C1: the other therapist and the other organization
    # get 404 (not visible).
    Endpoint("hold", "POST", "/sessions/hold",
             {"json": {"session": {"therapist_id": T1, "client_id": C1, **SLOT}, "time_zone": NY}},
             statuses={"therapist2": 403, "admin_b": 404}, writes=True),
    Endpoint("hold status", "GET", f"/sessions/hold/{MISSING}", {},
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 404)),
    Endpoint("hold release", "DELETE", f"/sessions/hold/{MISSING}", {},
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 404)),
    Endpoint("confirm", "POST", "/sessions/confirm",
             {"json": {"hold_key": MISSING, "session": SLOT}},
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 404)),
    Endpoint("cancel", "POST", "/sessions/cancel",
             {"json": {"session_id": S[5], "reason": "other"}},
             statuses={"therapist2": 404, "admin_b": 404}, writes=True),
    *[Endpoint(f"lifecycle {action}", "POST", f"/sessions/{S[7]}/{action}",
               {"json": body} if body else {},
               statuses={"therapist2": 404, "admin_b": 404}, writes=True)
      for action, body in (("start", None), ("complete", None), ("no-show", None),
                           ("reactivate", None),
                           ("reschedule", {"start_time": "2027-04-06T13:00:00", "time_zone": NY}))],
    Endpoint("suggest", "POST", "/suggest-alternative-times",
             {"json": {"therapist_id": T1, "client_id": C1, "duration_minutes": 60, "time_zone": NY}},
             statuses={"therapist2": 403, "admin_b": 404}),
    # Reports: every role; a therapist gets their own row only.
    Endpoint("supervision report", "GET", "/reports/supervision", {"params": {"month": "2027-03"}}),
    # Calendar feeds.
    Endpoint("feeds list", "GET", "/calendar/feeds", {}),
    Endpoint("feed create", "POST", "/calendar/feeds", {"json": {"label": "phone"}}, writes=True,
             statuses={"therapist": 201, "therapist2": 201, "admin": 400, "scheduler": 400,
                       "admin_b": 400}),
    Endpoint("feed revoke", "DELETE", f"/calendar/feeds/{MISSING}", {},
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 404)),
    Endpoint("feed ics", "GET", "/calendar/not-a-feed-token.ics", {}, authenticated=False,
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 404)),
    # The waitlist (docs/WAITLIST.md): admins and schedulers; therapists 403; C1 and T1 are org A's.
    _admin("waitlist list", "GET", "/waitlist", who=STAFF_ROLES),
    _admin("waitlist create", "POST", "/waitlist", {"json": {
        "client_id": C1, "service_code": "97153", "duration_minutes": 60,
        "windows": [{"weekday": 0, "start": "09:00", "end": "17:00"}], "time_zone": NY,
        "earliest_date": "2027-03-01"}}, who=STAFF_ROLES, ok=201, org_a=True, writes=True),
    _admin("waitlist show", "GET", f"/waitlist/{MISSING}", who=STAFF_ROLES, missing=True),
    _admin("waitlist change", "PATCH", f"/waitlist/{MISSING}", {"json": {"priority": 1}},
           who=STAFF_ROLES, missing=True),
    _admin("waitlist remove", "DELETE", f"/waitlist/{MISSING}", who=STAFF_ROLES, missing=True),
    _admin("waitlist matches", "GET", "/waitlist/matches", {"params": {
        "start": "2027-03-01T19:00:00Z", "end": "2027-03-01T20:00:00Z", "therapist_id": T1}},
        who=STAFF_ROLES, org_a=True),
    _admin("waitlist offers", "GET", "/waitlist/offers", who=STAFF_ROLES),
    _admin("offer accept", "POST", f"/waitlist/offers/{MISSING}/accept", who=STAFF_ROLES,
           missing=True),
    _admin("offer decline", "POST", f"/waitlist/offers/{MISSING}/decline", who=STAFF_ROLES,
           missing=True),
    # Board page (static HTML; data comes from the endpoints above).
    Endpoint("board", "GET", "/board", {}, authenticated=False),
    Endpoint("board slash", "GET", "/board/", {}, authenticated=False,
             statuses=dict.fromkeys(("admin", "scheduler", "therapist", "therapist2", "admin_b"), 308)),
    # Admin API and audit log. Admins manage staff, settings, imports and authorizations; schedulers
    # also read therapists and authorizations and manage clients, caseloads and locations; a
    # therapist reads and adds to their own availability and time off (another therapist's: 404).
    _admin("audit events", "GET", "/admin/audit-events"),
    _admin("settings", "GET", "/admin/organization/settings"),
    _admin("settings patch", "PATCH", "/admin/organization/settings",
           {"json": {"buffer_minutes": 15}}, writes=True),
    _admin("import", "POST", "/admin/import", {"json": {}}, writes=True),
    _admin("therapists", "GET", "/admin/therapists", who=STAFF_ROLES),
    _admin("therapist create", "POST", "/admin/therapists",
           {"json": {"full_name": "New Person", "credential": "RBT"}}, ok=201, writes=True),
    _admin("therapist", "GET", f"/admin/therapists/{T1}", who=STAFF_ROLES, org_a=True),
    _admin("therapist patch", "PATCH", f"/admin/therapists/{T1}",
           {"json": {"full_name": "Tara Quinn"}}, org_a=True, writes=True),
    _admin("therapist archive", "POST", f"/admin/therapists/{MISSING}/archive", missing=True),
    _admin("therapist restore", "POST", f"/admin/therapists/{MISSING}/restore", missing=True),
    _admin("availability", "GET", f"/admin/therapists/{T1}/availability", who=EVERYONE,
           org_a=True, hidden_from_therapist2=True),
    _admin("availability put", "PUT", f"/admin/therapists/{MISSING}/availability",
           {"json": {"windows": []}}, who=EVERYONE, missing=True),
    _admin("time off", "GET", f"/admin/therapists/{T1}/time-off", who=EVERYONE, org_a=True,
           hidden_from_therapist2=True),
    _admin("time off create", "POST", f"/admin/therapists/{T1}/time-off",
           {"json": {"start": "2027-05-03T00:00", "end": "2027-05-04T00:00"}}, who=EVERYONE,
           ok=201, org_a=True, hidden_from_therapist2=True, writes=True),
    _admin("time off patch", "PATCH", f"/admin/therapists/{T1}/time-off/{MISSING}",
           {"json": {"kind": "extra"}}, who=EVERYONE, missing=True),
    _admin("time off delete", "DELETE", f"/admin/therapists/{T1}/time-off/{MISSING}",
           who=EVERYONE, missing=True),
    _admin("clients", "GET", "/admin/clients", who=STAFF_ROLES),
    _admin("client create", "POST", "/admin/clients", {"json": {"full_name": "New Client"}},
           who=STAFF_ROLES, ok=201, writes=True),
    _admin("client", "GET", f"/admin/clients/{C1}", who=STAFF_ROLES, org_a=True),
    _admin("client patch", "PATCH", f"/admin/clients/{C1}", {"json": {"full_name": "Casey Cole"}},
           who=STAFF_ROLES, org_a=True, writes=True),
    _admin("client archive", "POST", f"/admin/clients/{MISSING}/archive", who=STAFF_ROLES,
           missing=True),
    _admin("client restore", "POST", f"/admin/clients/{MISSING}/restore", who=STAFF_ROLES,
           missing=True),
    _admin("caseload", "GET", f"/admin/clients/{C1}/caseload", who=STAFF_ROLES, org_a=True),
    _admin("caseload put", "PUT", f"/admin/clients/{MISSING}/caseload",
           {"json": {"therapist_ids": []}}, who=STAFF_ROLES, missing=True),
    _admin("locations", "GET", "/admin/locations", who=STAFF_ROLES),
    _admin("location create", "POST", "/admin/locations",
           {"json": {"name": "Annex", "location_type": "clinic"}}, who=STAFF_ROLES, ok=201,
           writes=True),
    _admin("location", "GET", f"/admin/locations/{L1}", who=STAFF_ROLES, org_a=True),
    _admin("location patch", "PATCH", f"/admin/locations/{L1}", {"json": {"name": "Main clinic"}},
           who=STAFF_ROLES, org_a=True, writes=True),
    _admin("location archive", "POST", f"/admin/locations/{MISSING}/archive", who=STAFF_ROLES,
           missing=True),
    _admin("location restore", "POST", f"/admin/locations/{MISSING}/restore", who=STAFF_ROLES,
           missing=True),
    _admin("travel times", "GET", "/admin/travel-times", who=STAFF_ROLES),
    _admin("travel times put", "PUT", "/admin/travel-times", {"json": {"entries": []}},
           who=STAFF_ROLES, writes=True),
    _admin("authorizations", "GET", "/admin/authorizations", who=STAFF_ROLES),
    _admin("authorization create", "POST", "/admin/authorizations",
           {"json": {"client_id": MISSING, "payer": "P", "number": "N1",
                     "start_date": "2027-01-01", "end_date": "2027-12-31"}}, missing=True),
    _admin("authorization", "GET", f"/admin/authorizations/{A1}", who=STAFF_ROLES, org_a=True),
    _admin("authorization patch", "PATCH", f"/admin/authorizations/{A1}",
           {"json": {"payer": "Pinned Payer"}}, org_a=True, writes=True),
    _admin("users", "GET", "/admin/users"),
    _admin("user create", "POST", "/admin/users",
           {"json": {"email": "new.user@example.org", "full_name": "New User",
                     "role": "scheduler"}}, ok=201, writes=True),
    _admin("user", "GET", f"/admin/users/{U_SCHED}", org_a=True),
    _admin("user patch", "PATCH", f"/admin/users/{U_SCHED}", {"json": {"full_name": "New User"}},
           org_a=True, writes=True),
    _admin("user archive", "POST", f"/admin/users/{MISSING}/archive", missing=True),
    _admin("user restore", "POST", f"/admin/users/{MISSING}/restore", missing=True),
    _admin("webhooks", "GET", "/admin/webhooks"),
    _admin("webhook create", "POST", "/admin/webhooks",
           {"json": {"url": "http://93.184.215.14/hook", "event_types": ["session.created"]}},
           ok=201, writes=True),
    _admin("webhook", "GET", f"/admin/webhooks/{MISSING}", missing=True),
    _admin("webhook patch", "PATCH", f"/admin/webhooks/{MISSING}", {"json": {"enabled": False}},
           missing=True),
    _admin("webhook delete", "DELETE", f"/admin/webhooks/{MISSING}", missing=True),
    _admin("webhook rotate", "POST", f"/admin/webhooks/{MISSING}/rotate-secret", {"json": {}},
           missing=True),
    _admin("webhook deliveries", "GET", f"/admin/webhooks/{MISSING}/deliveries", missing=True),
    _admin("webhook redeliver", "POST",
           f"/admin/webhooks/{MISSING}/deliveries/{MISSING}/redeliver", missing=True),
]  # fmt: skip

ENDPOINTS: list[Endpoint] = [
    Endpoint("schedule batch GET", "GET", "/get-schedule-data-batch", {"params": DAYS}),
    Endpoint(
        "schedule batch GET, availability and conflicts",
        "GET",
        "/get-schedule-data-batch",
        {"params": DAYS | {"include_availability": "true", "include_conflicts": "true"}},
    ),
    Endpoint(
        "schedule batch POST",
        "POST",
        "/get-schedule-data-batch",
        {"json": DAYS | {"include_availability": True, "include_conflicts": True}},
    ),
    Endpoint("sessions page", "GET", "/get-sessions-optimized", {"params": {"limit": 100}}),
    Endpoint("dropdown", "GET", "/get-dropdown-data", {"params": {"types": "all"}}),
    Endpoint("healthz", "GET", "/healthz", {}, authenticated=False),
    Endpoint("readyz", "GET", "/readyz", {}, authenticated=False),
    Endpoint("metrics", "GET", "/metrics", {}, authenticated=False),
    *NEW_ENDPOINTS,
]

# Routes that are documentation, not data.
UNCOVERED_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}
UNCOVERED_ROUTES |= {("GET", "/redoc")}
UNCOVERED_ROUTES |= {("HEAD", p) for _, p in UNCOVERED_ROUTES}


@dataclass(frozen=True)
class IdParameter:
    name: str
    method: str
    path: str
    kind: Kind
    build: Callable[[str], Request] | None
    own_status: int = 200
    # Roles the route serves; every other role gets 403 FORBIDDEN for every id (own or hidden).
    roles: frozenset[str] | None = None
    # For requests that name two ids: build(id, the caller's own ids) (e.g. the hold's client).
    build_with_own: Callable[[str, dict[Kind, str]], Request] | None = None
    # Roles whose own id is allowed but who may name no other id of this kind: every hidden id gets
    # the same 403 (a therapist may hold / search only in their own calendar).
    others_forbidden: frozenset[str] = frozenset()

    def request(self, value: str, own: dict[Kind, str]) -> Request:
        if self.build_with_own is not None:
            return self.build_with_own(value, own)
        assert self.build is not None
        return self.build(value)

    def url(self, value: str) -> str:
        return self.path.replace("{id}", value)

    def allows(self, role: str) -> bool:
        return self.roles is None or role in self.roles


ADMINS = frozenset({"admin", "admin_b", "scheduler"})  # roles that read /admin/ records
THERAPISTS = frozenset({"therapist", "therapist2"})


def _hold(therapist: str, client: str) -> Request:
    session = {"therapist_id": therapist, "client_id": client, **SLOT}
    return {"json": {"session": session, "time_zone": NY}}


def _forecast(therapist: str, client: str) -> Request:
    """The hold's dry run (docs/BOOKING.md "Forecast"): scoped like the hold, writes nothing."""
    request = _hold(therapist, client)
    return {"json": {**request["json"], "dry_run": True}}


def _suggest(therapist: str, client: str) -> Request:
    return {
        "json": {
            "therapist_id": therapist,
            "client_id": client,
            "duration_minutes": 60,
            "time_zone": NY,
            "start_date": "2027-04-05",
            "end_date": "2027-04-09",
        }
    }


def _q(**extra: Any) -> Callable[[str], Request]:
    return lambda value: {"params": DAYS | {k: v.format(id=value) for k, v in extra.items()}}


ID_PARAMETERS: list[IdParameter] = [
    IdParameter("batch GET therapist_ids", "GET", "/get-schedule-data-batch", "therapist",
                _q(therapist_ids="{id}")),
    IdParameter("batch GET client_ids", "GET", "/get-schedule-data-batch", "client",
                _q(client_ids="{id}")),
    IdParameter("batch GET therapist_ids with availability", "GET", "/get-schedule-data-batch",
                "therapist", _q(therapist_ids="{id}", include_availability="true",
                                include_conflicts="true")),
    IdParameter("batch POST therapist_ids", "POST", "/get-schedule-data-batch", "therapist",
                lambda i: {"json": DAYS | {"therapist_ids": [i], "include_availability": True}}),
    IdParameter("batch POST client_ids", "POST", "/get-schedule-data-batch", "client",
                lambda i: {"json": DAYS | {"client_ids": [i], "include_conflicts": True}}),
    IdParameter("sessions therapist_id", "GET", "/get-sessions-optimized", "therapist",
                lambda i: {"params": {"therapist_id": i}}),
    IdParameter("sessions client_id", "GET", "/get-sessions-optimized", "client",
                lambda i: {"params": {"client_id": i}}),
    IdParameter("sessions client_id and dates", "GET", "/get-sessions-optimized", "client",
                lambda i: {"params": {"client_id": i, "status": "scheduled"} | DAYS}),
    # Booking, lifecycle, suggestions: the own case writes (a hold, a cancellation, a start).
    IdParameter("cancel session_id", "POST", "/sessions/cancel", "session",
                lambda i: {"json": {"session_id": i, "reason": "other"}}),
    IdParameter("start session path id", "POST", "/sessions/{id}/start", "session",
                None, build_with_own=lambda i, _: {}),
    IdParameter("hold therapist_id", "POST", "/sessions/hold", "therapist", None,
                build_with_own=lambda i, own: _hold(i, own["client"]),
                others_forbidden=THERAPISTS),
    IdParameter("hold client_id", "POST", "/sessions/hold", "client", None,
                build_with_own=lambda i, own: _hold(own["therapist"], i)),
    IdParameter("forecast therapist_id", "POST", "/sessions/hold", "therapist", None,
                build_with_own=lambda i, own: _forecast(i, own["client"]),
                others_forbidden=THERAPISTS),
    IdParameter("forecast client_id", "POST", "/sessions/hold", "client", None,
                build_with_own=lambda i, own: _forecast(own["therapist"], i)),
    IdParameter("suggest therapist_id", "POST", "/suggest-alternative-times", "therapist", None,
                build_with_own=lambda i, own: _suggest(i, own["client"]),
                others_forbidden=THERAPISTS),
    IdParameter("suggest client_id", "POST", "/suggest-alternative-times", "client", None,
                build_with_own=lambda i, own: _suggest(own["therapist"], i)),
    IdParameter("report therapist_id", "GET", "/reports/supervision", "therapist",
                lambda i: {"params": {"month": "2027-03", "therapist_id": i}},
                others_forbidden=THERAPISTS),
    # Admin API: admins only; other roles get the same 403 whatever the id.
    IdParameter("admin therapist path id", "GET", "/admin/therapists/{id}", "therapist",
                None, roles=ADMINS, build_with_own=lambda i, _: {}),
    IdParameter("admin client path id", "GET", "/admin/clients/{id}", "client",
                None, roles=ADMINS, build_with_own=lambda i, _: {}),
]  # fmt: skip


@dataclass(frozen=True)
class Caller:
    """A fixture user (see tests/fixtures.py) and the ids it may and may not see."""

    role: str  # key of Clinic.headers()
    own: dict[Kind, str]
    out_of_scope: dict[Kind, str] | None  # same organization, not visible to this caller
    foreign: dict[Kind, str]  # another organization


_ORG_A_IDS: dict[Kind, str] = {"therapist": T1, "client": C1, "session": S[1]}
_ORG_B_IDS: dict[Kind, str] = {"therapist": TB, "client": CB, "session": SB}

CALLERS: list[Caller] = [
    Caller("admin", _ORG_A_IDS, None, _ORG_B_IDS),
    Caller("scheduler", _ORG_A_IDS, None, _ORG_B_IDS),
    # T1's caseload: C1, C3 (and inactive C4). C2 is only on T2's caseload; S3 is T2 with C2.
    Caller("therapist", _ORG_A_IDS, {"therapist": T2, "client": C2, "session": S[3]}, _ORG_B_IDS),
    Caller(
        "therapist2",
        {"therapist": T2, "client": C2, "session": S[6]},
        {"therapist": T1, "client": C1, "session": S[1]},
        _ORG_B_IDS,
    ),
    Caller("admin_b", _ORG_B_IDS, None, _ORG_A_IDS),
]

NONEXISTENT: dict[Kind, str] = {
    "therapist": str(uuid.UUID(int=0xDEAD0001)),
    "client": str(uuid.UUID(int=0xDEAD0002)),
    "session": str(uuid.UUID(int=0xDEAD0003)),
}
