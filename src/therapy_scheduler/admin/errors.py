"""Error codes specific to the admin API."""

from __future__ import annotations

from therapy_scheduler.errors import Conflict


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class TherapistAlreadyLinked(Conflict):
    code = "THERAPIST_ALREADY_LINKED"


class SelfLockout(Conflict):
    code = "SELF_LOCKOUT"
