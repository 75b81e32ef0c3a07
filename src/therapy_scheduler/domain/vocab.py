"""Built-in vocabularies, labelled in plain English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServiceCode:
    code: str
    label: str
    unit_minutes: int = 15


SERVICE_CODES: dict[str, ServiceCode] = {
    s.code: s
    for s in (
        ServiceCode("97151", "Behavior identification assessment"),
        ServiceCode("97152", "Behavior identification supporting assessment"),
        ServiceCode("97153", "Adaptive behavior treatment by protocol"),
        ServiceCode("97154", "Group adaptive behavior treatment by protocol"),
        ServiceCode("97155", "Adaptive behavior treatment with protocol modification"),
        ServiceCode("97156", "Family adaptive behavior treatment guidance"),
        ServiceCode("97157", "Multiple-family group adaptive behavior treatment guidance"),
        ServiceCode("97158", "Group adaptive behavior treatment with protocol modification"),
    )
}

LOCATION_TYPES: dict[str, str] = {
    "clinic": "Clinic",
    "home": "Home",
    "school": "School",
    "telehealth": "Telehealth",
    "community": "Community",
}

SESSION_STATUSES: dict[str, str] = {
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "no_show": "No-show",
}

Attribution = Literal["client", "staff", "neither"]


@dataclass(frozen=True)
class CancellationReason:
    code: str
    label: str
    attributed_to: Attribution


CANCELLATION_REASONS: dict[str, CancellationReason] = {
    r.code: r
    for r in (
        CancellationReason("client_illness", "Client illness", "client"),
        CancellationReason("client_schedule_conflict", "Client schedule conflict", "client"),
        CancellationReason("client_no_transport", "Client has no transport", "client"),
        CancellationReason("therapist_illness", "Therapist illness", "staff"),
        CancellationReason("therapist_unavailable", "Therapist unavailable", "staff"),
        CancellationReason("weather", "Weather", "neither"),
        CancellationReason("clinic_closure", "Clinic closure", "staff"),
        CancellationReason("authorization_issue", "Authorization issue", "neither"),
        CancellationReason("other", "Other", "neither"),
    )
}

CREDENTIALS = ("BCBA-D", "BCBA", "BCaBA", "RBT", "LBA", "SLP", "OT")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Credentials that may supervise (BACB: a BCBA, or a BCaBA under a BCBA), compared case-blind: the
# booking's supervision rule and the supervision report (docs/DECISIONS.md "Supervision overlap").
SUPERVISING_CREDENTIALS = ("BCBA", "BCBA-D", "BCaBA")
