"""The webhook admin API (docs/WEBHOOKS.md): registration, the secret shown once, validation, SSRF
refusals, rotation, removal and isolation, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.fixtures import Clinic
from tests.support import assert_error
from tests.webhooks.conftest import register, webhook_settings
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import AuditEvent, WebhookEndpoint


@pytest.fixture
def settings(database_url: str) -> Settings:
    # As in production: only public addresses.
    return webhook_settings(database_url, webhook_allow_private_targets=False)


async def endpoint_rows(db: Database) -> list[tuple[str, list[str]]]:
    async with db.read() as conn:
        rows = await conn.execute(select(WebhookEndpoint.url, WebhookEndpoint.event_types))
        return [(r[0], list(r[1])) for r in rows]


def field_of(response: httpx.Response) -> str:
    return str(response.json()["details"]["fields"][0]["field"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "url.scheme"),
        ("file:///etc/passwd", "url.scheme"),
        ("not a url", "url.scheme"),
        ("http://user:pw@93.184.215.14/hook", "url.credentials"),
        ("http://127.0.0.1:8080/hook", "url.private_address"),
        ("http://localhost/hook", "url.private_address"),
        ("http://10.1.2.3/hook", "url.private_address"),
        ("http://192.168.0.10/hook", "url.private_address"),
        ("http://169.254.169.254/latest/meta-data", "url.private_address"),
        ("http://[::1]/hook", "url.private_address"),
        ("http://[::ffff:127.0.0.1]/hook", "url.private_address"),
        ("http://100.64.0.1/hook", "url.private_address"),
        ("http://0.0.0.0/hook", "url.private_address"),
    ],
)
async def test_refused_urls_are_400_naming_the_url_and_change_nothing(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, url: str, reason: str
) -> None:
    r = await client.post(
        "/admin/webhooks",
        json={"url": url, "event_types": ["session.created"]},
        headers=clinic.headers("admin"),
    )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"]["fields"][0] == {
        "field": "url",
        "message": body["details"]["fields"][0]["message"],
        "type": reason,
    }
    assert await endpoint_rows(db) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://93.184.215.14/h", "event_types": ["session.eaten"]}, "event_types"),
        ({"url": "http://93.184.215.14/h", "event_types": []}, "event_types"),
        ({"url": "http://93.184.215.14/h", "event_types": ["hold.created"] * 2}, "event_types"),
        ({"event_types": ["hold.created"]}, "url"),
        (
            {"url": "http://93.184.215.14/h", "event_types": ["hold.created"], "secret": "x"},
            "secret",
        ),
        (
            {"url": "http://93.184.215.14/h", "event_types": ["hold.created"], "enabled": "yes"},
            "enabled",
        ),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, clinic: Clinic, db: Database, body: dict[str, object], field: str
) -> None:
    r = await client.post("/admin/webhooks", json=body, headers=clinic.headers("admin"))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert field_of(r).startswith(field)
    assert await endpoint_rows(db) == []


async def test_only_admins_manage_webhooks_and_only_their_organizations(
    client: httpx.AsyncClient, database_url: str, db: Database, clinic: Clinic
) -> None:
    for who in ("scheduler", "therapist"):
        r = await client.get("/admin/webhooks", headers=clinic.headers(who))
        assert_error(r, 403, "FORBIDDEN")
    r = await client.get("/admin/webhooks")
    assert r.status_code == 401


async def test_secret_is_shown_once_and_rotation_and_removal(
    database_url: str, clinic: Clinic, db: Database
) -> None:
    from therapy_scheduler.app import close_app, create_app

    # A separate app that may register 127.0.0.1 (the SSRF setting on).
    app = create_app(webhook_settings(database_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        created = await register(
            client, clinic, "http://127.0.0.1:9/hook", ["hold.created", "session.created"]
        )
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert created["enabled"] is True
        assert created["event_types"] == ["hold.created", "session.created"]
        listed = (await client.get("/admin/webhooks", headers=clinic.headers("admin"))).text
        one = await client.get(f"/admin/webhooks/{created['id']}", headers=clinic.headers("admin"))
        assert one.status_code == 200
        assert secret not in listed
        assert secret not in one.text
        assert "secret" not in one.json()["data"]

        # Another organization's admin sees nothing of it.
        other = await client.get(
            f"/admin/webhooks/{created['id']}", headers=clinic.headers("admin_b")
        )
        assert_error(other, 404, "NOT_FOUND")
        assert (await client.get("/admin/webhooks", headers=clinic.headers("admin_b"))).json()[
            "data"
        ] == []

        # A bad PATCH changes nothing.
        r = await client.patch(
            f"/admin/webhooks/{created['id']}",
            json={"url": "gopher://x", "event_types": ["hold.released"]},
            headers=clinic.headers("admin"),
        )
        assert_error(r, 400, "VALIDATION_ERROR")
        assert field_of(r) == "url"
        assert await endpoint_rows(db) == [
            ("http://127.0.0.1:9/hook", ["hold.created", "session.created"])
        ]
        r = await client.patch(
            f"/admin/webhooks/{created['id']}",
            json={"event_types": ["hold.released"], "enabled": False},
            headers=clinic.headers("admin"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["data"]["event_types"] == ["hold.released"]
        assert r.json()["data"]["disabled_reason"] == "admin"

        r = await client.post(
            f"/admin/webhooks/{created['id']}/rotate-secret",
            json={"overlap_seconds": 8 * 24 * 3600},
            headers=clinic.headers("admin"),
        )
        assert_error(r, 400, "VALIDATION_ERROR")
        assert field_of(r) == "overlap_seconds"
        r = await client.post(
            f"/admin/webhooks/{created['id']}/rotate-secret",
            json={},
            headers=clinic.headers("admin"),
        )
        assert r.status_code == 200, r.text
        rotated = r.json()["data"]
        assert rotated["secret"] != secret
        assert rotated["previous_secret_expires_at"] is not None

        # Audit events name fields and ids, never the secret.
        async with db.read() as conn:
            details = [
                str(r[0])
                for r in await conn.execute(
                    select(AuditEvent.details).where(AuditEvent.entity_type == "webhook_endpoint")
                )
            ]
        assert len(details) == 3
        assert not any(secret in d or rotated["secret"] in d for d in details)

        r = await client.delete(f"/admin/webhooks/{created['id']}", headers=clinic.headers("admin"))
        assert r.status_code == 200
        assert await endpoint_rows(db) == []
        r = await client.delete(f"/admin/webhooks/{created['id']}", headers=clinic.headers("admin"))
        assert_error(r, 404, "NOT_FOUND")
    await close_app(app)
