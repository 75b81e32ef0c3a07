"""Prometheus metrics: requests by route and status, latency, booking outcomes, hold expiries; and
who may read them."""

from __future__ import annotations

import hmac
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from therapy_scheduler.config import Settings
from therapy_scheduler.infra.client import is_loopback


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "therapy_scheduler_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "therapy_scheduler_request_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.bookings = Counter(
            "therapy_scheduler_booking_outcomes_total",
            "Hold/confirm/cancel outcomes by action and result code",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "therapy_scheduler_webhook_deliveries_total",
            "Webhook delivery attempts by result: succeeded, retry, failed (gave up), gone",
            ["result"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "therapy_scheduler_webhook_delivery_seconds",
            "Latency of webhook delivery attempts",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.hold_expiries = Counter(
            "therapy_scheduler_hold_expiries_total",
            "Holds found expired and purged",
            registry=self.registry,
        )
        # The read replica (infra/replica.py); stays 1 and 0 when none is configured.
        self.replica_in_use = Gauge(
            "therapy_scheduler_replica_in_use",
            "1 while reads may go to the read replica, 0 while it is down or lagging too far",
            registry=self.registry,
        )
        self.replica_in_use.set(1)
        self.replica_lag = Gauge(
            "therapy_scheduler_replica_lag_seconds",
            "How far the read replica's replay is behind the primary, at the last check",
            registry=self.registry,
        )
        self.replica_fallbacks = Counter(
            "therapy_scheduler_replica_fallback_reads_total",
            "Reads served by the primary although a replica is configured, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.waitlist_offers = Counter(
            "therapy_scheduler_waitlist_offers_total",
            "Waitlist offers by event: created, accepted, declined, expired (docs/WAITLIST.md)",
            ["event"],
            registry=self.registry,
        )


class MetricsAccess:
    """Who may read GET /metrics (`THERAPY_SCHEDULER_METRICS_ACCESS`): anyone (`open`), a client on
    this host (`loopback`), or a client that sends `Authorization: Bearer <METRICS_TOKEN>` (`token`,
    from any address, this host included)."""

    def __init__(
        self, mode: Literal["open", "loopback", "token"], token: str | None = None
    ) -> None:
        if mode == "token" and not token:
            raise ValueError("token access needs a token")
        self.mode = mode
        self._token = token.encode() if token else b""

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAccess:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        return cls(settings.metrics_access, token)

    def allows(self, address: str | None, authorization: str | None) -> bool:
        if self.mode == "open":
            return True
        if self.mode == "loopback":
            return is_loopback(address)
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant time: how much of a guess was right must not show in the answer's timing.
        return hmac.compare_digest(credentials.strip().encode("latin-1"), self._token)
