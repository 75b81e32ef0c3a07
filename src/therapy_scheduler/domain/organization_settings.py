"""An organization's scheduling policies, stored as JSON on the organization row."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from therapy_scheduler.domain.vocab import SERVICE_CODES
from therapy_scheduler.kit.params import JsonBody

Policy = Literal["block", "warn", "off"]


class CancellationPolicy(JsonBody):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    notice_hours: float = Field(default=24, ge=0, le=24 * 30)
    release_units_on_late_cancel: bool = True
    # Reasons whose attribution (client/staff/neither) never counts as late, e.g. staff illness.
    exempt_attributions: list[Literal["client", "staff", "neither"]] = ["staff"]


class OrganizationSettings(JsonBody):
    """Settings as JSON (the PATCH body, the import document, the stored column): each value of its
    JSON type."""

    hold_seconds_default: int = Field(default=300, ge=30, le=900)
    # Active (unexpired, not yet confirmed or released) holds one user may have at once: therapists
    # hold for themselves; admins and schedulers book for the whole organization.
    max_active_holds_therapist: int = Field(default=10, ge=1, le=1000)
    max_active_holds_staff: int = Field(default=100, ge=1, le=10_000)
    availability_policy: Policy = "block"
    authorization_policy: Policy = "block"
    buffer_minutes: int = Field(default=0, ge=0, le=240)
    default_service_code: str = "97153"
    default_cancellation_policy: str = "standard"
    cancellation_policies: list[CancellationPolicy] = Field(
        default_factory=lambda: [CancellationPolicy(name="standard")], min_length=1, max_length=20
    )
    # How long a waitlist offer holds its slot while the clinic calls the family (docs/WAITLIST.md).
    waitlist_offer_minutes: int = Field(default=24 * 60, ge=5, le=14 * 24 * 60)

    @field_validator("default_service_code")
    @classmethod
    def _known_service(cls, value: str) -> str:
        if value not in SERVICE_CODES:
            raise ValueError(f'unknown service code "{value}"')
        return value

    @model_validator(mode="after")
    def _default_policy_exists(self) -> OrganizationSettings:
        names = [p.name for p in self.cancellation_policies]
        if len(set(names)) != len(names):
            raise ValueError("cancellation policy names must be unique")
        if self.default_cancellation_policy not in names:
            raise ValueError(
                f'default_cancellation_policy "{self.default_cancellation_policy}" is not defined'
            )
        return self

    def policy(self, name: str | None) -> CancellationPolicy | None:
        wanted = name or self.default_cancellation_policy
        return next((p for p in self.cancellation_policies if p.name == wanted), None)

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> OrganizationSettings:
        """Settings as stored on the organization row. Keys this version does not know (written by a
        newer version, or by hand) are ignored rather than failing every request of the organization."""
        known = {k: v for k, v in (raw or {}).items() if k in cls.model_fields}
        return cls.model_validate(known)
