"""The caller's part of an ETag (`infra/conditional.py`): what, about them, an answer depends on."""

from __future__ import annotations

from therapy_scheduler.auth.principal import Principal
from therapy_scheduler.infra.conditional import Caller


def etag_caller(principal: Principal) -> Caller:
    """The user, their organization, their scope (role; a therapist: which one) and the
    organization's time zone (the default zone of the answers)."""
    return Caller(
        user_id=principal.user_id,
        organization_id=principal.organization_id,
        scope_key=principal.scope_key,
        time_zone=principal.organization_time_zone,
    )
