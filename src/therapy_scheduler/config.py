"""Configuration: one Settings class, read from `THERAPY_SCHEDULER_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"  # noqa: S105 - refused in production


def normalize_database_url(url: str) -> str:
    """Accept the URL spellings users type and return the async driver URL SQLAlchemy needs."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgres://")
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THERAPY_SCHEDULER_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{Path('data') / 'therapy-scheduler.db'}"
    # Optional read-only replica used by the read endpoints; defaults to database_url.
    read_database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Bounded waits: a request never hangs on the database (SECURITY.md, "Faults").
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=1.5, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=100)
    # Also test each pooled PostgreSQL connection with a round trip before use. Without it a
    # connection the server closed (restart, failover) is still replaced at checkout, with no round
    # trip (infra/db.py); only one that died silently fails a request with 503 DATABASE_UNAVAILABLE.
    db_pool_pre_ping: bool = False
    # The database URLs point at PgBouncer in transaction pooling mode (any version): no named
    # prepared statements, and no statement_timeout startup parameter (docs/DEPLOYMENT.md, "PgBouncer").
    db_pgbouncer: bool = False
    # The read replica is taken out of use while it lags more than this, or is unreachable; checked
    # every `replica_check_interval_seconds` (docs/DEPLOYMENT.md, "Read replicas").
    replica_max_lag_seconds: float = Field(default=5.0, ge=0)
    replica_check_interval_seconds: float = Field(default=1.0, gt=0)

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithms: list[str] = ["HS256"]
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    redis_url: str | None = None
    rate_limit_user: str = "600"  # requests per minute, or "off"
    rate_limit_ip: str = "60"
    # Prefix of the shared rate-limit counters in Redis (separates deployments sharing one Redis).
    rate_limit_prefix: str = Field(default="ts:rl", min_length=1, max_length=64)
    dropdown_cache_seconds: float = Field(default=30.0, ge=0)
    max_body_bytes: int = 256 * 1024
    # Seconds between passes of the hold/idempotency purge task (0 disables it).
    hold_purge_interval_seconds: float = Field(default=30.0, ge=0)
    # Webhooks (docs/WEBHOOKS.md). Seconds between dispatcher passes (0 disables the dispatcher)
    # and between the scans for due reminders and authorization warnings.
    webhook_dispatch_interval_seconds: float = Field(default=2.0, ge=0)
    webhook_scan_interval_seconds: float = Field(default=60.0, gt=0)
    # Deliver to addresses in loopback, private, link-local and other non-public ranges. Off in
    # production use (SSRF, docs/SECURITY.md); tests and single-host set-ups turn it on.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Retries: exponential back-off from the base, capped, with jitter, until the window has passed
    # since the first attempt (at least 24 h in production, docs/DECISIONS.md).
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_delay_seconds: float = Field(default=4 * 3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=26 * 3600.0, gt=0)
    # An endpoint is disabled after this many failed attempts in a row (any delivery).
    webhook_disable_after_failures: int = Field(default=100, ge=1)
    webhook_batch: int = Field(default=20, ge=1, le=500)
    # Delivered (or given-up) events, their deliveries and attempts are deleted after this many days.
    webhook_retention_days: int = Field(default=30, ge=1, le=3650)
    # The waitlist job (docs/WAITLIST.md): lapsed offers and freed slots not matched yet; 0 = off.
    waitlist_interval_seconds: float = Field(default=30.0, ge=0)
    # How long a cancel waits after its COMMIT for the offer of the slot it freed (docs/DECISIONS.md).
    waitlist_settle_seconds: float = Field(default=1.0, ge=0, le=30)
    log_level: str = "INFO"
    # Who may read GET /metrics: clients on this host (`loopback`), whoever sends METRICS_TOKEN as a
    # bearer token (`token`), or anyone (`open`). The client address is the one the rate limiter
    # uses (infra/client.py); behind a proxy see DEPLOYMENT.md, "Metrics".
    metrics_access: Literal["open", "loopback", "token"] = "loopback"
    metrics_token: SecretStr | None = None

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _driver(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else value

    @field_validator("rate_limit_user", "rate_limit_ip")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value.strip().lower() != "off" and not (value.strip().isdigit() and int(value) > 0):
            raise ValueError('a rate limit is a positive number of requests per minute, or "off"')
        return value.strip()

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError(
                "THERAPY_SCHEDULER_JWT_SECRET must be set to a real secret in production"
            )
        if len(self.jwt_secret) < 32 and not self.jwt_jwks_url:
            raise ValueError("THERAPY_SCHEDULER_JWT_SECRET must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _metrics_token_with_token_access(self) -> Settings:
        token = self.metrics_token.get_secret_value() if self.metrics_token else None
        if self.metrics_access == "token" and (token is None or len(token) < 32):
            raise ValueError(
                "THERAPY_SCHEDULER_METRICS_ACCESS=token needs THERAPY_SCHEDULER_METRICS_TOKEN "
                "of at least 32 characters"
            )
        if self.metrics_access != "token" and token is not None:
            # A token that is set but not asked for would look like protection it is not.
            raise ValueError(
                "THERAPY_SCHEDULER_METRICS_TOKEN is set but THERAPY_SCHEDULER_METRICS_ACCESS is "
                f"{self.metrics_access}, not token"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def rate_limit(self, which: Literal["user", "ip"]) -> int | None:
        raw = self.rate_limit_user if which == "user" else self.rate_limit_ip
        return None if raw.strip().lower() == "off" else int(raw)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
