"""The role table of docs/API.md in one place. Every permission check in the service asks `can()`."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    READ_ORG_SCHEDULE = "read_org_schedule"  # otherwise: own sessions and caseload sessions
    SEE_AUTHORIZATIONS = "see_authorizations"
    SEE_CONTACT_DATA = "see_contact_data"
    BOOK_FOR_ANY_THERAPIST = "book_for_any_therapist"  # otherwise: only their own sessions
    SEE_INACTIVE_PEOPLE = "see_inactive_people"
    MANAGE_STAFF = "manage_staff"  # therapists, authorizations, users
    MANAGE_CLIENTS = "manage_clients"  # clients, locations, any availability
    MANAGE_OWN_AVAILABILITY = "manage_own_availability"
    READ_AUDIT_LOG = "read_audit_log"
    IMPORT_DATA = "import_data"
    MANAGE_WEBHOOKS = "manage_webhooks"  # webhook endpoints, their secrets and deliveries


C = Capability

ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    "admin": frozenset(Capability),
    "scheduler": frozenset(
        {
            C.READ_ORG_SCHEDULE,
            C.SEE_AUTHORIZATIONS,
            C.BOOK_FOR_ANY_THERAPIST,
            C.SEE_INACTIVE_PEOPLE,
            C.MANAGE_CLIENTS,
            C.MANAGE_OWN_AVAILABILITY,
        }
    ),
    "therapist": frozenset({C.MANAGE_OWN_AVAILABILITY}),
}


def role_can(role: str, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES.get(role, frozenset())
