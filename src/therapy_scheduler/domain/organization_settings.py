"""An organization's scheduling policies, stored as JSON on the organization row."""

from __future__ import annotations

from typing import Any, Literal

import orjson
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


LocationType = Literal["clinic", "home", "school", "community"]


class TravelDefault(JsonBody):
    """Travel minutes between two places of these types when the matrix and coordinates say nothing
    (docs/ADMIN.md). Telehealth needs no travel and has no default."""

    location_types: tuple[LocationType, LocationType]
    minutes: int = Field(ge=0, le=240)


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
    # Travel between places (docs/BOOKING.md "Travel time"): its own policy, beside the flat break.
    travel_policy: Policy = "block"
    travel_speed_kmh: float = Field(default=30, gt=0, le=200)
    travel_margin_minutes: int = Field(default=5, ge=0, le=120)
    travel_defaults: list[TravelDefault] = Field(default_factory=list, max_length=20)
    default_service_code: str = "97153"
    default_cancellation_policy: str = "standard"
    cancellation_policies: list[CancellationPolicy] = Field(
        default_factory=lambda: [CancellationPolicy(name="standard")], min_length=1, max_length=20
    )
    # Supervision (docs/BOOKING.md "Supervision overlap", docs/ADMIN.md): the service-code pairs
    # [supervising, supervised] that may overlap for one client, and the monthly minimum of the
    # supervision report (share of an RBT's direct hours, number of contacts).
    supervision_pairs: list[tuple[str, str]] = Field(
        default_factory=lambda: [("97155", "97153")], max_length=20
    )
    supervision_min_percent: float = Field(default=5, ge=0, le=100)
    supervision_min_contacts: int = Field(default=2, ge=0, le=100)
    # Webhooks (docs/WEBHOOKS.md): `session.reminder_due` this many minutes before each session's
    # start (absolute durations before the UTC start, so DST never shifts them); the
    # `authorization.low_units` threshold (remaining units below it; 0 = never) and how many days
    # before its end date an authorization is `authorization.expiring` (0 = never).
    reminder_lead_minutes: list[int] = Field(default_factory=lambda: [2880, 120], max_length=10)
    authorization_low_units_threshold: int = Field(default=10, ge=0, le=100_000)
    authorization_expiring_days: int = Field(default=30, ge=0, le=365)
    # How long a waitlist offer holds its slot while the clinic calls the family (docs/WAITLIST.md).
    waitlist_offer_minutes: int = Field(default=24 * 60, ge=5, le=14 * 24 * 60)

    @field_validator("default_service_code")
    @classmethod
    def _known_service(cls, value: str) -> str:
        if value not in SERVICE_CODES:
            raise ValueError(f'unknown service code "{value}"')
        return value

    @field_validator("travel_defaults")
    @classmethod
    def _one_default_per_pair(cls, value: list[TravelDefault]) -> list[TravelDefault]:
        seen: set[tuple[str, ...]] = set()
        for entry in value:
            key = tuple(sorted(entry.location_types))
            if key in seen:
                raise ValueError(f"location types {' / '.join(key)} are given twice")
            seen.add(key)
        return value

    @field_validator("supervision_pairs")
    @classmethod
    def _known_pairs(cls, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for supervising, supervised in pairs:
            for code in (supervising, supervised):
                if code not in SERVICE_CODES:
                    raise ValueError(f'unknown service code "{code}"')
            if supervising == supervised:
                raise ValueError(f'a service code cannot supervise itself ("{supervising}")')
        if len(set(pairs)) != len(pairs):
            raise ValueError("each pair may be listed once")
        return pairs

    def supervised_codes(self, supervising: str) -> frozenset[str]:
        """The service codes a session of code `supervising` may supervise."""
        return frozenset(b for a, b in self.supervision_pairs if a == supervising)

    @field_validator("reminder_lead_minutes")
    @classmethod
    def _lead_times(cls, value: list[int]) -> list[int]:
        if any(m < 1 or m > 43_200 for m in value):
            raise ValueError("each reminder lead time is 1 to 43200 minutes (30 days)")
        if len(set(value)) != len(value):
            raise ValueError("reminder lead times must be unique")
        return sorted(value, reverse=True)

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

    @classmethod
    def of_row(cls, raw: dict[str, Any] | None) -> OrganizationSettings:
        """`load` of the settings a request read with its caller, validated once per process for
        each stored content (about 0.3 ms each time otherwise, on every booking; docs/DECISIONS.md,
        "An organization's settings are validated once per process"). The instance is shared by
        every request with those settings: read it, never modify it (nothing does; a change goes
        through the stored JSON and `load`)."""
        try:
            key = orjson.dumps(raw or {}, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # what JSON allows and orjson does not (a 65-bit integer)
            return cls.load(raw)
        found = _LOADED.get(key)
        if found is None:
            found = cls.load(raw)
            if len(_LOADED) >= _MAX_LOADED:
                _LOADED.clear()
            _LOADED[key] = found
        return found


# Validated settings by their stored JSON (keys sorted); a handful per process, one per
# organization (and per version of its settings), so a bound only guards against unbounded growth.
_LOADED: dict[bytes, OrganizationSettings] = {}
_MAX_LOADED = 256
