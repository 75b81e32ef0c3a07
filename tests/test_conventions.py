"""The conventions of docs/API.md through HTTP: envelope, request ids, privacy headers, authentication,
error statuses for malformed requests, operational endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import update

from tests.conftest import count_rows
from tests.fixtures import T1, U_ADMIN, U_SCHED, Clinic
from tests.support import assert_error
from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import User

BATCH = "/get-schedule-data-batch"
DAY = {"start_date": "2027-03-08", "end_date": "2027-03-08"}
LIMIT = 256 * 1024


async def test_success_and_error_envelopes(client: httpx.AsyncClient, clinic: Clinic) -> None:
    ok = await client.get(BATCH, params=DAY, headers=clinic.headers("admin"))
    assert ok.json()["success"] is True
    bad = await client.get(BATCH, params={}, headers=clinic.headers("admin"))
    body = assert_error(bad, 400, "VALIDATION_ERROR")
    assert body["request_id"] == bad.headers["x-request-id"]
    assert {f["field"] for f in body["details"]["fields"]} == {"start_date", "end_date"}
    assert body["error"].startswith("Invalid request: ")


@pytest.mark.parametrize("rid", ["abc", "A.b_c-1", "x" * 128])
async def test_valid_request_id_is_echoed(client: httpx.AsyncClient, rid: str) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    e = await client.get("/get-sessions-optimized", headers={"X-Request-ID": rid})
    assert e.headers["x-request-id"] == rid
    assert e.json()["request_id"] == rid


@pytest.mark.parametrize("rid", ["", "x" * 129, "has space", "semi;colon", "ünï", "a/b"])
async def test_invalid_request_id_is_replaced(client: httpx.AsyncClient, rid: str) -> None:
    r = await client.get("/get-sessions-optimized", headers={b"X-Request-ID": rid.encode()})
    generated = r.headers["x-request-id"]
    assert generated != rid
    assert len(generated) == 32
    int(generated, 16)
    assert r.json()["request_id"] == generated


async def test_no_request_id_gets_a_fresh_one_each_time(client: httpx.AsyncClient) -> None:
    a = await client.get("/healthz")
    b = await client.get("/healthz")
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


async def test_privacy_headers_on_every_response(client: httpx.AsyncClient, clinic: Clinic) -> None:
    responses = [
        await client.get(BATCH, params=DAY, headers=clinic.headers("admin")),
        await client.get("/get-dropdown-data", headers=clinic.headers("therapist")),
        await client.get("/get-sessions-optimized"),
        await client.get("/nowhere"),
        await client.get("/healthz"),
        await client.post(BATCH, content=b"x", headers={"content-type": "text/plain"}),
    ]
    for r in responses:
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["vary"] == "Authorization"


def _expired(settings: Settings) -> str:
    return mint_token(settings, uuid.UUID(U_ADMIN), expires_in=-120)


def _claims(**extra: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "sub": U_ADMIN,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        **extra,
    }


async def test_unauthorized_cases(client: httpx.AsyncClient, clinic: Clinic) -> None:
    settings = clinic.settings
    secret = settings.jwt_secret
    none_token = jwt.encode(_claims(), key="", algorithm="none")
    cases = {
        "missing": None,
        "basic": "Basic YWRtaW46YWRtaW4=",
        "empty bearer": "Bearer ",
        "malformed": "Bearer not.a.jwt",
        "garbage": "Bearer abc",
        "expired": f"Bearer {_expired(settings)}",
        "alg none": f"Bearer {none_token}",
        "wrong secret": "Bearer " + jwt.encode(_claims(), "x" * 40, algorithm="HS256"),
        "HS512 not configured": "Bearer " + jwt.encode(_claims(), secret * 2, algorithm="HS512"),
        "no exp": "Bearer "
        + jwt.encode({"sub": U_ADMIN, "iat": int(datetime.now(UTC).timestamp())}, secret),
        "not yet valid": "Bearer "
        + jwt.encode(
            _claims(nbf=int((datetime.now(UTC) + timedelta(hours=1)).timestamp())), secret
        ),
        "sub not a uuid": "Bearer " + jwt.encode(_claims(sub="admin"), secret),
        "unknown user": "Bearer " + mint_token(settings, uuid.uuid4()),
        "inactive user": f"Bearer {clinic.tokens['inactive']}",
    }
    for name, header in cases.items():
        headers = {} if header is None else {"Authorization": header}
        for r in (
            await client.get(BATCH, params=DAY, headers=headers),
            await client.post(BATCH, json=DAY, headers=headers),
            await client.get("/get-sessions-optimized", headers=headers),
            await client.get("/get-dropdown-data", headers=headers),
        ):
            body = assert_error(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"] == "Bearer", name
            assert "Tara" not in r.text
            assert body["details"] == {}


async def test_role_and_activity_changes_take_effect_immediately(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    h = clinic.headers("scheduler")
    before = await client.get(BATCH, params=DAY, headers=h)
    assert all("authorization" in s for s in before.json()["data"]["sessions"])
    async with db.write() as conn:
        await conn.execute(
            update(User)
            .where(User.id == uuid.UUID(U_SCHED))
            .values(role="therapist", therapist_id=uuid.UUID(T1))
        )
    after = await client.get(BATCH, params=DAY, headers=h)
    assert after.status_code == 200
    assert all("authorization" not in s for s in after.json()["data"]["sessions"])
    forbidden = await client.get("/get-dropdown-data?include_inactive=1", headers=h)
    assert_error(forbidden, 403, "FORBIDDEN")
    async with db.write() as conn:
        await conn.execute(
            update(User).where(User.id == uuid.UUID(U_SCHED)).values(is_active=False)
        )
    assert_error(await client.get(BATCH, params=DAY, headers=h), 401, "UNAUTHORIZED")


async def test_not_found_and_method_not_allowed_envelopes(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    r = await client.get("/no-such-endpoint", headers={"X-Request-ID": "rid-404"})
    body = assert_error(r, 404, "NOT_FOUND")
    assert body["request_id"] == "rid-404"
    r = await client.delete("/get-sessions-optimized", headers=clinic.headers("admin"))
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in r.headers["allow"]
    r = await client.put(BATCH, json=DAY, headers=clinic.headers("admin"))
    assert_error(r, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("raw", [b"{", b'{"start_date": }', b"{'a': 1}", b"\xff\xfe{}", b"", b"  "])
async def test_invalid_json_is_400(client: httpx.AsyncClient, clinic: Clinic, raw: bytes) -> None:
    r = await client.post(
        BATCH, content=raw, headers={**clinic.headers("admin"), "content-type": "application/json"}
    )
    if raw:
        assert_error(r, 400, "INVALID_JSON")
    else:  # no body at all: the body is required
        assert_error(r, 400, "VALIDATION_ERROR")


def _padded(size: int) -> bytes:
    """A valid request body of exactly `size` bytes."""
    head = b'{"start_date": "2027-03-08", "end_date": "2027-03-08"'
    return head + b" " * (size - len(head) - 1) + b"}"


async def test_body_size_limit_is_inclusive(client: httpx.AsyncClient, clinic: Clinic) -> None:
    h = {**clinic.headers("admin"), "content-type": "application/json"}
    at_limit = await client.post(BATCH, content=_padded(LIMIT), headers=h)
    assert at_limit.status_code == 200, at_limit.text
    over = await client.post(BATCH, content=_padded(LIMIT + 1), headers=h)
    assert_error(over, 413, "PAYLOAD_TOO_LARGE")


async def test_oversized_body_without_content_length_is_413(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    """A chunked body has no Content-Length: the limit is enforced while reading it."""

    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = _padded(total)
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    h = {**clinic.headers("admin"), "content-type": "application/json"}
    over = await client.post(BATCH, content=chunks(LIMIT + 1), headers=h)
    assert "content-length" not in over.request.headers
    assert_error(over, 413, "PAYLOAD_TOO_LARGE")
    huge = await client.post(BATCH, content=chunks(4 * LIMIT), headers=h)
    assert_error(huge, 413, "PAYLOAD_TOO_LARGE")
    fits = await client.post(BATCH, content=chunks(LIMIT), headers=h)
    assert fits.status_code == 200, fits.text
    assert fits.json()["request_parameters"]["start_date"] == "2027-03-08"


async def test_oversized_body_is_413_before_authentication(client: httpx.AsyncClient) -> None:
    r = await client.post(
        BATCH, content=_padded(LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_body_is_415(
    client: httpx.AsyncClient, clinic: Clinic, content_type: str | None
) -> None:
    headers = clinic.headers("admin")
    if content_type:
        headers["content-type"] = content_type
    r = await client.post(BATCH, content=b'{"start_date": "2027-03-08"}', headers=headers)
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.post(
        BATCH,
        content=_padded(200),
        headers={**clinic.headers("admin"), "content-type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 200, r.text


async def test_operational_endpoints_need_no_token(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"success": True, "status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["success"] is True
    assert ready.json()["status"] == "ready"
    assert ready.json()["revision"]
    await client.get("/get-sessions-optimized")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'therapy_scheduler_requests_total{method="GET",route="/get-sessions-optimized",'
        'status="401"} 1.0' in metrics.text
    )
    assert "therapy_scheduler_request_seconds_bucket" in metrics.text


async def test_openapi_declares_paths_and_error_codes(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert set(paths) >= {
        "/get-schedule-data-batch",
        "/get-sessions-optimized",
        "/get-dropdown-data",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert set(paths["/get-schedule-data-batch"]) == {"get", "post"}
    declared = set(paths["/get-schedule-data-batch"]["post"]["responses"])
    assert declared >= {"200", "400", "401", "404", "413", "415", "429", "500", "503"}
    assert set(paths["/get-dropdown-data"]["get"]["responses"]) >= {"400", "401", "403"}
    names = {p["name"] for p in paths["/get-sessions-optimized"]["get"]["parameters"]}
    assert names >= {
        "page",
        "limit",
        "therapist_id",
        "client_id",
        "status",
        "start_date",
        "end_date",
        "location_type",
        "cursor",
        "time_zone",
    }
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/therapists?q=%00p%5C&status=active",
        "/get-sessions-optimized?status=%00",
        "/healthz?x=%00",
    ],
)
async def test_nul_in_a_query_is_a_validation_error(
    client: httpx.AsyncClient, clinic: Clinic, path: str
) -> None:
    # PostgreSQL text cannot hold U+0000: found by the full schema fuzz as a 500 on /admin/therapists.
    r = await client.get(path, headers=clinic.headers("admin"))
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"]["fields"] == [
        {"field": "query", "message": "contains U+0000", "type": "value_error"}
    ]


async def test_nul_in_a_json_body_is_a_validation_error(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    before = await count_rows(db, "locations")
    body = b'{"name": "Annex\\u0000", "location_type": "clinic"}'
    r = await client.post(
        "/admin/locations",
        content=body,
        headers={**clinic.headers("admin"), "content-type": "application/json"},
    )
    assert assert_error(r, 400, "VALIDATION_ERROR")["details"]["fields"][0]["field"] == "body"
    assert await count_rows(db, "locations") == before
    # The six characters \u0000 written as text (an escaped backslash) are an ordinary string.
    ok = await client.post(
        BATCH,
        content=b'{"start_date": "2027-03-08", "end_date": "2027-03-08", "time_zone": "\\\\u0000"}',
        headers={**clinic.headers("admin"), "content-type": "application/json"},
    )
    assert ok.status_code == 400
    assert ok.json()["details"]["fields"][0]["field"] == "time_zone"
