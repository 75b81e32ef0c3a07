"""Where a webhook may be sent (docs/SECURITY.md, "Webhooks"): http(s) only, and, unless
`webhook_allow_private_targets` is set, only to public addresses. Checked when an endpoint is
registered and again before every delivery (DNS can change); the delivery then connects to the
address that was checked, so a second lookup cannot swap it for another.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2048


class TargetRefused(Exception):
    """The URL may not be used; `reason` is a short stable code, safe to store and show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    address: str  # the checked IP address the delivery connects to


def parse_url(raw: str) -> httpx.URL:
    """The URL if its shape is acceptable: http or https, a host, no user or password."""
    if len(raw) > MAX_URL_LENGTH:
        raise TargetRefused("too_long", f"a webhook URL has at most {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise TargetRefused("invalid_url", "not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise TargetRefused("scheme", "only http and https URLs are accepted")
    if not url.host:
        raise TargetRefused("invalid_url", "the URL has no host")
    if url.userinfo:
        raise TargetRefused("credentials", "credentials in the URL are not accepted")
    if url.fragment:
        raise TargetRefused("invalid_url", "a webhook URL has no fragment")
    return url


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local, shared,
    reserved, multicast or unspecified), IPv4-mapped IPv6 judged as its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(url: httpx.URL, *, allow_private: bool) -> Target:
    """Resolve the URL's host; refuse it when any of its addresses is not public (unless allowed)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError, ValueError, OverflowError):
        raise TargetRefused("dns", "the host name does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused("dns", "the host name does not resolve")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise TargetRefused(
            "private_address",
            "the URL resolves to a loopback, private, link-local or otherwise non-public address",
        )
    return Target(url=url, address=addresses[0])


async def check_target(raw: str, *, allow_private: bool) -> Target:
    """Parse and resolve: the endpoint's URL as it may be used now."""
    return await resolve(parse_url(raw), allow_private=allow_private)


def pinned_request(
    client: httpx.AsyncClient, target: Target, *, headers: dict[str, str], content: bytes
) -> httpx.Request:
    """A POST to the checked address, with the URL's host in `Host` and as the TLS server name, so
    that the certificate is still verified for the host name."""
    host = target.url.host
    url = target.url.copy_with(host=target.address)
    host_header = host if target.url.port is None else f"{host}:{target.url.port}"
    return client.build_request(
        "POST",
        url,
        headers={**headers, "host": host_header},
        content=content,
        extensions={"sni_hostname": host} if target.url.scheme == "https" else {},
    )
