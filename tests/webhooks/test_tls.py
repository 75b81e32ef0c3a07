"""HTTPS delivery (docs/WEBHOOKS.md, docs/SECURITY.md): the dispatcher connects to the address it
checked against SSRF while TLS verifies the URL's host name. A real TLS receiver on 127.0.0.1 with
certificates made by trustme: one for the host name succeeds; one for another name, or only for the
address connected to, fails and the attempt records `tls: certificate`."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trustme
from standardwebhooks.webhooks import Webhook

from tests.fixtures import ORG_A, Clinic
from tests.webhooks.conftest import delivery_states, drain, register
from therapy_scheduler.config import Settings
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.webhooks.targets import check_target

HOST = "localhost"  # a host name (not an address) that resolves to 127.0.0.1 without DNS


@dataclass
class TlsReceiver:
    url: str
    server_names: list[str | None] = field(default_factory=list)  # SNI of each handshake
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA) -> Iterator[Callable[..., Awaitable[TlsReceiver]]]:
    """Starts an HTTPS receiver bound to the address `HOST` resolves to, serving a certificate of
    `ca` for the given names."""
    servers: list[ThreadingHTTPServer] = []

    async def start(*names: str) -> TlsReceiver:
        # The address the dispatcher will connect to: the one its SSRF check resolves.
        address = (await check_target(f"https://{HOST}/", allow_private=True)).address
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(context)
        state: dict[str, TlsReceiver] = {}

        def sni(_sock: Any, server_name: str | None, _ctx: Any) -> None:
            state["r"].server_names.append(server_name)

        context.sni_callback = sni

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                state["r"].received.append((headers, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer((address, 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        state["r"] = TlsReceiver(url=f"https://{HOST}:{server.server_address[1]}/hooks")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return state["r"]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def trusting_sender(ca: trustme.CA) -> Any:
    """The dispatcher's client settings (no redirects, no environment, bounded timeout), trusting
    the test CA instead of the public ones."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(5.0),
        follow_redirects=False,
        trust_env=False,
        verify=context,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=0),
    ) as client:
        yield client


async def _emit(db: Database) -> str:
    async with db.write() as conn:
        event_id = await outbox.emit_session_event(
            conn,
            organization_id=uuid.UUID(ORG_A),
            event_type="session.updated",
            session_id=uuid.uuid4(),
            therapist_id=uuid.uuid4(),
            client_id=uuid.uuid4(),
        )
    return str(event_id)


async def _attempts(client: httpx.AsyncClient, clinic: Clinic, endpoint_id: str) -> list[Any]:
    r = await client.get(
        f"/admin/webhooks/{endpoint_id}/deliveries", headers=clinic.headers("admin")
    )
    assert r.status_code == 200, r.text
    return [(a["status_code"], a["error"]) for d in r.json()["data"] for a in d["attempts"]]


async def test_a_certificate_for_the_host_name_is_accepted_on_the_checked_address(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    trusting_sender: httpx.AsyncClient,
    tls_receiver: Callable[..., Awaitable[TlsReceiver]],
) -> None:
    receiver = await tls_receiver(HOST)  # no IP address in the certificate: only the name can match
    endpoint = await register(client, clinic, receiver.url, ["session.updated"])
    event_id = await _emit(db)

    await drain(db, settings, trusting_sender)

    assert await delivery_states(db) == [("succeeded", 1)]
    assert await _attempts(client, clinic, endpoint["id"]) == [(204, None)]
    ((headers, body),) = receiver.received
    assert headers["webhook-id"] == event_id
    assert headers["host"] == f"{HOST}:{receiver.url.split(':')[2].split('/')[0]}"
    assert receiver.server_names == [HOST]  # the host name went out as SNI, not the address
    Webhook(endpoint["secret"]).verify(body, headers)


@pytest.mark.parametrize("names", [("other.example",), ("127.0.0.1",)])
async def test_a_certificate_for_another_name_or_only_the_address_is_refused(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    trusting_sender: httpx.AsyncClient,
    tls_receiver: Callable[..., Awaitable[TlsReceiver]],
    names: tuple[str, ...],
) -> None:
    receiver = await tls_receiver(*names)
    endpoint = await register(client, clinic, receiver.url, ["session.updated"])
    await _emit(db)

    await drain(db, settings, trusting_sender, passes=1)

    assert receiver.received == []
    assert await delivery_states(db) == [("pending", 1)]  # retried later, like any failure
    assert await _attempts(client, clinic, endpoint["id"]) == [(None, "tls: certificate")]


async def test_an_unknown_issuer_is_refused(
    client: httpx.AsyncClient,
    clinic: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    tls_receiver: Callable[..., Awaitable[TlsReceiver]],
) -> None:
    # The dispatcher's own client trusts the public CAs only: the test CA is unknown to it.
    receiver = await tls_receiver(HOST)
    endpoint = await register(client, clinic, receiver.url, ["session.updated"])
    await _emit(db)

    await drain(db, settings, sender, passes=1)

    assert receiver.received == []
    assert await _attempts(client, clinic, endpoint["id"]) == [(None, "tls: certificate")]
