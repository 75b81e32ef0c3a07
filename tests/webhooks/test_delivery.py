"""Webhook delivery end to end: booking changes → outbox → dispatcher → a real HTTP receiver on
127.0.0.1, verified with the standardwebhooks library (docs/WEBHOOKS.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.booking.conftest import book, hold_body, hold_ok, monday
from tests.fixtures import ORG_A, Clinic
from tests.security.phi_plugin import phi_needles, scan_text
from tests.webhooks.conftest import Receiver, delivery_states, drain, event_ids, register
from therapy_scheduler.config import Settings
from therapy_scheduler.infra import outbox
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from therapy_scheduler.webhooks.dispatcher import claim, dispatch_once

SESSION_TYPES = [
    "session.created",
    "session.updated",
    "session.cancelled",
    "session.completed",
    "session.no_show",
    "hold.created",
    "hold.released",
]


async def test_booking_flow_is_delivered_signed_in_order_and_without_phi(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    endpoint = await register(client, booking, receiver.url, SESSION_TYPES)
    held = await hold_ok(client, booking, hold_body(monday(1)))
    occurrence = held["occurrences"][0]
    r = await client.post(
        "/sessions/confirm",
        json={
            "hold_key": held["hold_key"],
            "session": {
                "start_time": occurrence["start_time"],
                "end_time": occurrence["end_time"],
                "notes": "Parent asked about Casey Cole",
            },
        },
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    session_id = r.json()["session"]["id"]
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": session_id, "reason": "client_illness", "notes": "Casey is sick"},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    released = await hold_ok(client, booking, hold_body(monday(2)))
    r = await client.delete(
        f"/sessions/hold/{released['hold_key']}", headers=booking.headers("scheduler")
    )
    assert r.status_code == 200, r.text

    await drain(db, settings, sender)

    bodies = [json.loads(b) for b in receiver.bodies()]
    # In order per object (across objects, deliveries run side by side).
    by_object: dict[str, list[str]] = {}
    for b in bodies:
        key = b["data"].get("session_id") or b["data"]["hold_id"]
        by_object.setdefault(key, []).append(b["type"])
    assert sorted(by_object.values()) == [
        ["hold.created"],
        ["hold.created", "hold.released"],
        ["session.created", "session.cancelled"],
    ]
    assert by_object[session_id] == ["session.created", "session.cancelled"]
    session_events = [b for b in bodies if b["type"].startswith("session.")]
    assert {b["data"]["session_id"] for b in session_events} == {session_id}
    for body in bodies:
        assert body["organization_id"] == ORG_A
        assert set(body) == {"id", "type", "timestamp", "organization_id", "data"}
        assert all(k.endswith("_id") for k in body["data"])
    assert [b["id"] for b in bodies] == event_ids(receiver)

    # Every request verifies with the library's own verifier and the secret shown at creation.
    verifier = Webhook(endpoint["secret"])
    for got in receiver.received:
        assert verifier.verify(got.body, got.headers)["id"] == got.headers["webhook-id"]
        assert got.path == "/hooks"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(receiver.received[0].body, receiver.received[0].headers)

    # No name, e-mail, phone, date of birth or note of the fixture (nor the notes sent here).
    needles = {**phi_needles(), "Casey is sick": "cancel notes", "Parent asked": "session notes"}
    for got in receiver.received:
        text = got.body.decode() + json.dumps(got.headers)
        assert scan_text(text, needles) == []
    assert await delivery_states(db) == [("succeeded", 1)] * 5


async def test_rolled_back_change_sends_nothing(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await register(client, booking, receiver.url, ["session.created", "hold.created"])

    class Boom(Exception):
        pass

    async def change_that_fails() -> None:
        async with db.write() as conn:
            await outbox.emit(
                conn,
                organization_id=uuid.UUID(ORG_A),
                event_type="session.created",
                subject_id=uuid.uuid4(),
                ids={"session_id": uuid.uuid4()},
            )
            raise Boom

    with pytest.raises(Boom):
        await change_that_fails()
    # A refused hold (outside the therapist's hours) writes nothing either.
    r = await client.post(
        "/sessions/hold",
        json=hold_body(monday(1), "03:00", "04:00"),
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 409, r.text
    await drain(db, settings, sender)
    assert receiver.received == []
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 0


async def test_retries_after_500_and_timeout_then_succeeds(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    database_url: str,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    from tests.webhooks.conftest import webhook_settings

    # A short deadline, so that the held request times out soon (the product's default is longer).
    settings = webhook_settings(database_url, webhook_timeout_seconds=1.0)
    receiver.stall_seconds = 3.0
    await register(client, booking, receiver.url, ["hold.created"])
    receiver.plan = [500, 0, 503]  # a 500, a request held past the timeout, a 503, then 200
    await hold_ok(client, booking, hold_body(monday(1)))
    now = utcnow()
    first = await dispatch_once(db, settings, sender, now=now)
    assert (first.sent, first.succeeded) == (1, 0)
    # Not due again until the back-off has passed.
    assert (await dispatch_once(db, settings, sender, now=now + timedelta(seconds=1))).sent == 0
    for hours in (1, 2, 3):
        later = await dispatch_once(db, settings, sender, now=now + timedelta(hours=hours))
        assert later.sent == 1
    assert later.succeeded == 1
    assert await delivery_states(db) == [("succeeded", 4)]
    endpoint_id = (await client.get("/admin/webhooks", headers=booking.headers("admin"))).json()[
        "data"
    ][0]["id"]
    r = await client.get(
        f"/admin/webhooks/{endpoint_id}/deliveries", headers=booking.headers("admin")
    )
    assert r.status_code == 200, r.text
    (delivery,) = r.json()["data"]
    assert [(a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (500, "http 500"),
        (None, "timeout"),
        (503, "http 503"),
        (200, None),
    ]
    assert "receiver body secret" not in r.text  # response bodies are never kept
    # The same event id on every attempt (receivers deduplicate on it).
    assert len(set(event_ids(receiver))) == 1
    assert len(receiver.received) == 3


async def test_gives_up_after_the_window_and_disables_after_a_run_of_failures(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    database_url: str,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    from tests.webhooks.conftest import webhook_settings

    settings = webhook_settings(
        database_url, webhook_retry_window_seconds=24 * 3600, webhook_disable_after_failures=4
    )
    endpoint = await register(client, booking, receiver.url, ["hold.created"])
    receiver.plan = [500] * 10
    await hold_ok(client, booking, hold_body(monday(1)))
    now = utcnow()
    await dispatch_once(db, settings, sender, now=now)
    await dispatch_once(db, settings, sender, now=now + timedelta(hours=25))
    assert await delivery_states(db) == [("failed", 2)]  # retried for 24 h, then given up
    await hold_ok(client, booking, hold_body(monday(2)))
    await dispatch_once(db, settings, sender, now=now + timedelta(hours=26))
    await dispatch_once(db, settings, sender, now=now + timedelta(hours=28))
    r = await client.get(f"/admin/webhooks/{endpoint['id']}", headers=booking.headers("admin"))
    assert r.json()["data"]["enabled"] is False
    assert r.json()["data"]["disabled_reason"] == "failures"
    assert r.json()["data"]["consecutive_failures"] == 4
    # A disabled endpoint is not sent to.
    assert (await dispatch_once(db, settings, sender, now=now + timedelta(days=3))).sent == 0
    # Enabling it again clears the run; a redelivery sends the given-up one again.
    r = await client.patch(
        f"/admin/webhooks/{endpoint['id']}",
        json={"enabled": True},
        headers=booking.headers("admin"),
    )
    assert r.json()["data"]["consecutive_failures"] == 0
    deliveries = (
        await client.get(
            f"/admin/webhooks/{endpoint['id']}/deliveries?status=failed",
            headers=booking.headers("admin"),
        )
    ).json()["data"]
    assert len(deliveries) == 1
    receiver.plan = []
    r = await client.post(
        f"/admin/webhooks/{endpoint['id']}/deliveries/{deliveries[0]['id']}/redeliver",
        headers=booking.headers("admin"),
    )
    assert r.status_code == 200, r.text
    await drain(db, settings, sender, now=now + timedelta(days=3))
    assert sorted(s for s, _ in await delivery_states(db)) == ["succeeded", "succeeded"]


async def test_order_per_object_holds_back_later_events_until_the_earlier_is_done(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await register(client, booking, receiver.url, ["session.created", "session.cancelled"])
    confirmed = await book(client, booking, hold_body(monday(1)))
    session_id = confirmed["session"]["id"]
    other = (await book(client, booking, hold_body(monday(2))))["session"]["id"]
    r = await client.post(
        "/sessions/cancel",
        json={"session_id": session_id, "reason": "client_illness"},
        headers=booking.headers("scheduler"),
    )
    assert r.status_code == 200, r.text
    receiver.fail_once_matching = [session_id]  # its session.created fails once
    now = utcnow()
    await dispatch_once(db, settings, sender, now=now)

    def seen() -> list[tuple[str, str]]:
        return [
            (json.loads(b)["type"], json.loads(b)["data"]["session_id"]) for b in receiver.bodies()
        ]

    # The other session's event went out; the cancel of the first waits for its created.
    assert sorted(seen()) == sorted([("session.created", other), ("session.created", session_id)])
    assert await delivery_states(db) == [("pending", 1), ("succeeded", 1), ("pending", 0)]
    await drain(db, settings, sender, now=now + timedelta(hours=1))
    assert seen()[2:] == [("session.created", session_id), ("session.cancelled", session_id)]


async def test_a_killed_dispatcher_loses_nothing(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await register(client, booking, receiver.url, ["hold.created"])
    await hold_ok(client, booking, hold_body(monday(1)))
    await hold_ok(client, booking, hold_body(monday(2)))
    # Killed between claiming and sending: the claim committed, nothing was sent.
    now = utcnow()
    from therapy_scheduler.webhooks.dispatcher import fan_out

    async with db.write() as conn:
        await fan_out(conn, now)
        claimed = await claim(conn, settings, now)
    assert len(claimed) == 2
    # Killed in the middle of a send: the receiver holds the request, the task is cancelled.
    receiver.plan = [0]
    receiver.stall_seconds = 0.5
    task = asyncio.create_task(dispatch_once(db, settings, sender, now=now + timedelta(minutes=10)))
    assert await asyncio.to_thread(receiver.stalled.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # While the leases run, nobody sends them again; after, everything arrives.
    assert (await dispatch_once(db, settings, sender, now=now + timedelta(minutes=10))).sent == 0
    await drain(db, settings, sender, now=now + timedelta(hours=1))
    assert len(set(event_ids(receiver))) == 2
    assert [s for s, _ in await delivery_states(db)] == ["succeeded", "succeeded"]


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    endpoint = await register(client, booking, receiver.url, ["hold.created"])
    r = await client.post(
        f"/admin/webhooks/{endpoint['id']}/rotate-secret",
        json={"overlap_seconds": 3600},
        headers=booking.headers("admin"),
    )
    assert r.status_code == 200, r.text
    new_secret = r.json()["data"]["secret"]
    assert new_secret != endpoint["secret"]
    await hold_ok(client, booking, hold_body(monday(1)))
    await drain(db, settings, sender)
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(got.body, got.headers)
    Webhook(endpoint["secret"]).verify(got.body, got.headers)
    # After the overlap, only the new secret signs.
    await hold_ok(client, booking, hold_body(monday(2)))
    await drain(db, settings, sender, now=utcnow() + timedelta(hours=2))
    latest = receiver.received[-1]
    Webhook(new_secret).verify(latest.body, latest.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(latest.body, latest.headers)


async def test_redirects_are_not_followed_and_private_targets_refused_at_delivery(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    database_url: str,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    from tests.webhooks.conftest import webhook_settings

    await register(client, booking, receiver.url, ["hold.created"])
    receiver.plan = [302]
    await hold_ok(client, booking, hold_body(monday(1)))
    settings = webhook_settings(database_url)
    await dispatch_once(db, settings, sender)
    assert await delivery_states(db) == [("pending", 1)]
    assert len(receiver.received) == 1  # the redirect was not followed anywhere
    # The setting is turned off (as in production): the same URL is refused when sending.
    strict = webhook_settings(database_url, webhook_allow_private_targets=False)
    await dispatch_once(db, strict, sender, now=utcnow() + timedelta(hours=1))
    async with db.read() as conn:
        row = (await conn.execute(select(WebhookDelivery.last_error))).one()
    assert row[0] == "refused: private_address"
    assert len(receiver.received) == 1


async def test_endpoint_registered_later_or_unsubscribed_gets_nothing(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await register(client, booking, receiver.url, ["session.cancelled"])
    await hold_ok(client, booking, hold_body(monday(1)))
    await drain(db, settings, sender)
    assert receiver.received == []
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 1
        assert (await conn.execute(select(func.count()).select_from(WebhookDelivery))).scalar() == 0
    async with db.write() as conn:
        await conn.execute(update(WebhookEndpoint).values(event_types=["hold.created"]))
    await drain(db, settings, sender)
    assert receiver.received == []  # already fanned out before it subscribed


async def test_delivery_metrics(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
    app_and_client: tuple[object, httpx.AsyncClient],
) -> None:
    metrics = app_and_client[0].state.metrics  # type: ignore[attr-defined]
    await register(client, booking, receiver.url, ["hold.created"])
    receiver.plan = [500]
    await hold_ok(client, booking, hold_body(monday(1)))
    await dispatch_once(db, settings, sender, metrics)
    await dispatch_once(db, settings, sender, metrics, now=utcnow() + timedelta(hours=1))
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'therapy_scheduler_webhook_deliveries_total{result="retry"} 1.0' in r.text
    assert 'therapy_scheduler_webhook_deliveries_total{result="succeeded"} 1.0' in r.text
    assert "therapy_scheduler_webhook_delivery_seconds_count 2.0" in r.text


async def test_old_delivered_events_are_forgotten_pending_ones_kept(
    client: httpx.AsyncClient,
    booking: Clinic,
    db: Database,
    settings: Settings,
    sender: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    from therapy_scheduler.models import WebhookAttempt
    from therapy_scheduler.webhooks.scans import forget_once

    await register(client, booking, receiver.url, ["hold.created"])
    await hold_ok(client, booking, hold_body(monday(1)))
    await drain(db, settings, sender)
    receiver.plan = [500]
    await hold_ok(client, booking, hold_body(monday(2)))
    await drain(db, settings, sender)
    assert sorted(s for s, _ in await delivery_states(db)) == ["pending", "succeeded"]
    await forget_once(db, utcnow() + timedelta(days=31), retention_days=30)
    assert await delivery_states(db) == [("pending", 1)]
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 1
        assert (await conn.execute(select(func.count()).select_from(WebhookAttempt))).scalar() == 1
