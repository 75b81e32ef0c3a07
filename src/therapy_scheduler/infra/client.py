"""Who is asking: the client address every per-client rule uses (the per-IP rate limit, who may read
/metrics).

It is the peer address the server reports in the ASGI scope. uvicorn replaces it with the address in
`X-Forwarded-For` only when the connection comes from a trusted proxy (`--forwarded-allow-ips`,
by default 127.0.0.1 and ::1), taking the rightmost address that is not a trusted proxy. A header sent
by anyone else is ignored, so a remote client cannot claim to be local."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope


def client_address(scope: Scope) -> str | None:
    """The client's address, or None when the server reports none (e.g. a Unix socket)."""
    client = scope.get("client")
    return client[0] if client else None


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1, and 127.x written as an IPv4-mapped IPv6 address (a dual-stack socket)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
