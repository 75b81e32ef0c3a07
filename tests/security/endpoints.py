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
                   lambda i: {"json": {"session_id": i, "reason_code": "other"}}, own_status=200)

   Refused cases must change no row of any table; the allowed case runs first and may write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tests.fixtures import (
    C1,
    C2,
    CB,
    SB,
    T1,
    T2,
    TB,
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


DAYS = {"start_date": "2027-03-01", "end_date": "2027-03-31"}

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
]

# Routes that are documentation, not data.
UNCOVERED_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}
UNCOVERED_ROUTES |= {("HEAD", p) for _, p in UNCOVERED_ROUTES} | {("GET", "/redoc")}


@dataclass(frozen=True)
class IdParameter:
    name: str
    method: str
    path: str
    kind: Kind
    build: Callable[[str], Request]
    own_status: int = 200


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
        {"therapist": T2, "client": C2, "session": S[3]},
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
