"""Sending one webhook delivery over HTTP (docs/WEBHOOKS.md): the address checked again before the
attempt, the body signed with every secret in use, redirects not followed, one deadline for the whole
attempt; only the status code, the latency and an error code come back. The dispatcher
(`webhooks/dispatcher.py`) claims what to send and records what happened.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from therapy_scheduler.config import Settings
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.webhooks.signing import signature_header
from therapy_scheduler.webhooks.targets import TargetRefused, check_target, pinned_request

USER_AGENT = "therapy-scheduler-webhooks/1"


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this process by the dispatcher's claim: what to send, where, signed with what."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    organization_id: uuid.UUID
    event_id: uuid.UUID
    payload: dict[str, Any]
    url: str
    secrets: list[str] = field(repr=False)  # never in a log line or traceback
    first_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What an attempt leaves behind: the status code (None when no answer came), latency, error code."""

    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def request_body(payload: dict[str, Any]) -> str:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


async def send(client: httpx.AsyncClient, settings: Settings, item: Claimed) -> Outcome:
    """One POST: the address checked again (DNS can change), signed with every secret in use,
    redirects not followed; only the status code, latency and an error code are kept."""
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = await check_target(item.url, allow_private=settings.webhook_allow_private_targets)
    except TargetRefused as refused:
        return Outcome(None, took(), f"refused: {refused.reason}")
    body = request_body(item.payload)
    message_id = str(item.event_id)
    timestamp = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(
            item.secrets, message_id=message_id, timestamp=timestamp, body=body
        ),
    }
    try:
        request = pinned_request(client, target, headers=headers, content=body.encode())
        # One deadline for the whole attempt (httpx's timeouts are per phase), and the response is
        # streamed so that its body is never read, let alone stored.
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            response = await client.send(request, stream=True, follow_redirects=False)
            await response.aclose()
    except (httpx.TimeoutException, TimeoutError):
        return Outcome(None, took(), "timeout")
    except httpx.HTTPError as exc:
        if _certificate_refused(exc):
            return Outcome(None, took(), "tls: certificate")
        return Outcome(None, took(), f"connection: {type(exc).__name__}")
    error = None if 200 <= response.status_code < 300 else f"http {response.status_code}"
    return Outcome(response.status_code, took(), error)


def _certificate_refused(exc: BaseException) -> bool:
    """True when the receiver's certificate failed verification for the URL's host name (expired,
    another name, an unknown issuer): a fix for the receiver's admin, not a network failure."""
    seen: BaseException | None = exc
    for _ in range(10):  # the TLS error sits a few causes below httpx's
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """Bounded timeouts, no redirects, no proxies from the environment, no cookies kept."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=0),
    )
