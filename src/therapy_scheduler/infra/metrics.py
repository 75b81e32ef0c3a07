"""Prometheus metrics: requests by route and status, latency, booking outcomes, hold expiries."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
        self.hold_expiries = Counter(
            "therapy_scheduler_hold_expiries_total",
            "Holds found expired and purged",
            registry=self.registry,
        )
