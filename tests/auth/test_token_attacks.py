"""Attacks on the bearer token (docs/API.md): every forged, stale or misdirected token is a 401, and the
user row (not the token) decides who the caller is and what they may do, from the very next request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError
from sqlalchemy import update

from tests.conftest import make_settings
from tests.fixtures import U_ADMIN, U_OFF, U_SCHED, U_T1, Clinic, seed_clinic
from therapy_scheduler.app import close_app, create_app
from therapy_scheduler.config import DEV_JWT_SECRET, Settings
from therapy_scheduler.infra.db import Database
from therapy_scheduler.models import User

SESSIONS = "/get-sessions-optimized"
DROPDOWN = "/get-dropdown-data"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _claims(sub: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "nbf": now, "exp": now + 600} | extra


def _hs(claims: dict[str, Any], secret: str | bytes = DEV_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _raw_hmac(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token built by hand, so that any key (even a PEM public key) can sign it."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@asynccontextmanager
async def _seeded_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app built with `settings`, on the fixture clinic."""
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await seed_clinic(app.state.db, settings)
        yield client
    await close_app(app)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_401(r: httpx.Response, message: str) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "success": False,
        "error": message,
        "code": "UNAUTHORIZED",
        "request_id": r.headers["x-request-id"],
        "details": {},
    }


# --- HS256 (the default configuration) -----------------------------------------------------------


async def test_valid_token_passes(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.get(SESSIONS, headers=_bearer(_hs(_claims(U_ADMIN))))
    assert r.status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_refused(client: httpx.AsyncClient, clinic: Clinic, alg: str) -> None:
    unsigned = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(_claims(U_ADMIN))}."
    _assert_401(
        await client.get(SESSIONS, headers=_bearer(unsigned)), "Token algorithm not accepted"
    )


async def test_other_hmac_algorithms_refused(client: httpx.AsyncClient, clinic: Clinic) -> None:
    token = _hs(_claims(U_ADMIN), secret=DEV_JWT_SECRET * 2, alg="HS512")
    _assert_401(await client.get(SESSIONS, headers=_bearer(token)), "Token algorithm not accepted")


async def test_wrong_secret_refused(client: httpx.AsyncClient, clinic: Clinic) -> None:
    token = _hs(_claims(U_ADMIN), secret="another-secret-of-sufficient-length-0123456789")
    _assert_401(await client.get(SESSIONS, headers=_bearer(token)), "Invalid or expired token")


async def test_tampered_payload_refused(client: httpx.AsyncClient, clinic: Clinic) -> None:
    """A therapist's token with its payload swapped for the admin's keeps a signature that no longer
    matches."""
    header, _, signature = _hs(_claims(U_T1)).split(".")
    forged = f"{header}.{_segment(_claims(U_ADMIN))}.{signature}"
    _assert_401(await client.get(SESSIONS, headers=_bearer(forged)), "Invalid or expired token")
    # Flipping one character of the signature is just as dead.
    good = _hs(_claims(U_ADMIN))
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    _assert_401(await client.get(SESSIONS, headers=_bearer(flipped)), "Invalid or expired token")


async def test_expired_refused_beyond_leeway(client: httpx.AsyncClient, clinic: Clinic) -> None:
    now = int(time.time())
    expired = _hs(_claims(U_ADMIN, iat=now - 7200, nbf=now - 7200, exp=now - 60))
    _assert_401(await client.get(SESSIONS, headers=_bearer(expired)), "Invalid or expired token")
    # Within the configured 30 s of clock-skew leeway a token still passes.
    just = _hs(_claims(U_ADMIN, iat=now - 7200, nbf=now - 7200, exp=now - 5))
    assert (await client.get(SESSIONS, headers=_bearer(just))).status_code == 200


async def test_not_yet_valid_refused(client: httpx.AsyncClient, clinic: Clinic) -> None:
    now = int(time.time())
    early = _hs(_claims(U_ADMIN, nbf=now + 300, exp=now + 900))
    _assert_401(await client.get(SESSIONS, headers=_bearer(early)), "Invalid or expired token")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 4_000_000_000},  # no sub
        {"sub": str(uuid.UUID(int=0xA501))},  # no exp: tokens must expire
        {"sub": "admin", "exp": 4_000_000_000},  # sub is not a user id
        {"sub": 42, "exp": 4_000_000_000},  # sub is not a string
        {"sub": str(uuid.UUID(int=0xA501)), "exp": "tomorrow"},
    ],
    ids=["no-sub", "no-exp", "sub-not-uuid", "sub-not-string", "exp-not-number"],
)
async def test_malformed_claims_refused(
    client: httpx.AsyncClient, clinic: Clinic, claims: dict[str, Any]
) -> None:
    r = await client.get(SESSIONS, headers=_bearer(_hs(claims)))
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic YWRtaW46YWRtaW4=", "A valid bearer token is required"),
        ("Bearer", "A valid bearer token is required"),
        ("Bearer    ", "A valid bearer token is required"),
        ("Bearer abc", "Malformed bearer token"),
        ("Bearer a.b.c", "Malformed bearer token"),
    ],
)
async def test_malformed_headers_refused(
    client: httpx.AsyncClient, clinic: Clinic, header: str, message: str
) -> None:
    _assert_401(await client.get(SESSIONS, headers={"Authorization": header}), message)


async def test_token_in_query_string_ignored(client: httpx.AsyncClient, clinic: Clinic) -> None:
    token = _hs(_claims(U_ADMIN))
    r = await client.get(SESSIONS, params={"access_token": token, "token": token})
    _assert_401(r, "A valid bearer token is required")


async def test_unknown_and_inactive_users_refused(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    for sub in (str(uuid.uuid4()), U_OFF):
        _assert_401(
            await client.get(SESSIONS, headers=_bearer(_hs(_claims(sub)))),
            "Unknown or inactive user",
        )


async def _set_user(db: Database, user_id: str, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(update(User).where(User.id == uuid.UUID(user_id)).values(**values))


async def test_deactivation_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    token = _hs(_claims(U_ADMIN))
    assert (await client.get(SESSIONS, headers=_bearer(token))).status_code == 200
    await _set_user(db, U_ADMIN, is_active=False)
    _assert_401(await client.get(SESSIONS, headers=_bearer(token)), "Unknown or inactive user")
    await _set_user(db, U_ADMIN, is_active=True)
    assert (await client.get(SESSIONS, headers=_bearer(token))).status_code == 200


async def test_role_change_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, clinic: Clinic, db: Database
) -> None:
    """Roles live on the user row: demotions and promotions apply to tokens already issued."""
    admin = _bearer(_hs(_claims(U_ADMIN)))
    contact = {"types": "therapists", "include_contact": "true"}
    r = await client.get(DROPDOWN, params=contact, headers=admin)
    assert r.status_code == 200
    assert r.json()["data"]["therapists"][0]["email"] == "tara@alpha.example"

    await _set_user(db, U_ADMIN, role="scheduler")
    r = await client.get(DROPDOWN, params=contact, headers=admin)
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"

    # A scheduler demoted to therapist (with no therapist row) no longer sees the organization.
    scheduler = _bearer(_hs(_claims(U_SCHED)))
    before = (await client.get(SESSIONS, headers=scheduler)).json()
    assert before["data"]["summary"]["total_sessions"] == 9
    await _set_user(db, U_SCHED, role="therapist")
    after = await client.get(SESSIONS, headers=scheduler)
    assert after.status_code == 200
    assert after.json()["data"]["summary"]["total_sessions"] == 0
    r = await client.get(DROPDOWN, params={"include_inactive": "true"}, headers=scheduler)
    assert r.status_code == 403

    # A therapist promoted to admin sees contact data at once.
    therapist = _bearer(_hs(_claims(U_T1)))
    assert (await client.get(DROPDOWN, params=contact, headers=therapist)).status_code == 403
    await _set_user(db, U_T1, role="admin")
    assert (await client.get(DROPDOWN, params=contact, headers=therapist)).status_code == 200


async def test_organization_comes_from_the_user_row(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    """Claims naming another organization or role are ignored."""
    claims = _claims(U_T1, organization_id=str(uuid.UUID(int=0xB0)), role="admin", org="beta")
    r = await client.get(DROPDOWN, params={"types": "therapists"}, headers=_bearer(_hs(claims)))
    assert r.status_code == 200
    assert [t["full_name"] for t in r.json()["data"]["therapists"]] == ["Tara Quinn"]


@pytest.fixture
async def issuer_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url, jwt_issuer="https://idp.test/", jwt_audience="therapy-scheduler"
    )
    async with _seeded_client(settings) as client:
        yield client


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"iss": "https://idp.test/", "aud": "therapy-scheduler"}, 200),
        ({"iss": "https://idp.test/", "aud": ["other", "therapy-scheduler"]}, 200),
        ({"iss": "https://evil.test/", "aud": "therapy-scheduler"}, 401),
        ({"iss": "https://idp.test/", "aud": "another-service"}, 401),
        ({"aud": "therapy-scheduler"}, 401),
        ({"iss": "https://idp.test/"}, 401),
    ],
    ids=["valid", "aud-list", "wrong-iss", "wrong-aud", "no-iss", "no-aud"],
)
async def test_issuer_and_audience(
    issuer_client: httpx.AsyncClient, extra: dict[str, Any], status: int
) -> None:
    r = await issuer_client.get(SESSIONS, headers=_bearer(_hs(_claims(U_ADMIN, **extra))))
    assert r.status_code == status, r.text
    if status == 401:
        _assert_401(r, "Invalid or expired token")


# --- RS256 through a JWKS (an external identity provider) ----------------------------------------


class _JWKS:
    """A JWKS document served from a local HTTP server thread; counts how often it is fetched."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        # A short poll, so that shutdown() returns at once (the default is 0.5 s).
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> _JWKS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _public_jwk() -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}


@pytest.fixture
def jwks() -> Iterator[_JWKS]:
    with _JWKS([_public_jwk()]) as server:
        yield server


@pytest.fixture
async def jwks_client(database_url: str, jwks: _JWKS) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        jwt_jwks_url=jwks.url,
        jwt_algorithms=["RS256", "ES256", "HS256"],  # HS256 is dropped: JWKS means asymmetric only
        jwt_issuer="https://idp.test/",
        jwt_audience="therapy-scheduler",
    )
    async with _seeded_client(settings) as client:
        yield client


def _idp_claims(sub: str = U_ADMIN) -> dict[str, Any]:
    return _claims(sub, iss="https://idp.test/", aud="therapy-scheduler")


def _rs(claims: dict[str, Any], key: Any = RSA_KEY, kid: str | None = "k1") -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


async def test_jwks_valid_rs256(jwks_client: httpx.AsyncClient) -> None:
    r = await jwks_client.get(SESSIONS, headers=_bearer(_rs(_idp_claims())))
    assert r.status_code == 200, r.text
    # The only key of the set also verifies a token that names no kid.
    r = await jwks_client.get(SESSIONS, headers=_bearer(_rs(_idp_claims(), kid=None)))
    assert r.status_code == 200, r.text


async def test_hs_rs_confusion_refused(jwks_client: httpx.AsyncClient) -> None:
    """An HS256 token whose HMAC key is the server's public key PEM (the classic confusion attack)."""
    forged = _raw_hmac({"alg": "HS256", "typ": "JWT", "kid": "k1"}, _idp_claims(), PUBLIC_PEM)
    _assert_401(
        await jwks_client.get(SESSIONS, headers=_bearer(forged)), "Token algorithm not accepted"
    )
    # Nor does the configured HMAC secret work once a JWKS is configured.
    hs = _hs(_idp_claims() | {}, alg="HS256")
    _assert_401(
        await jwks_client.get(SESSIONS, headers=_bearer(hs)), "Token algorithm not accepted"
    )


async def test_jwks_alg_none_refused(jwks_client: httpx.AsyncClient) -> None:
    unsigned = f"{_segment({'alg': 'none', 'kid': 'k1'})}.{_segment(_idp_claims())}."
    _assert_401(
        await jwks_client.get(SESSIONS, headers=_bearer(unsigned)), "Token algorithm not accepted"
    )


async def test_algorithm_must_match_the_key(jwks_client: httpx.AsyncClient) -> None:
    """ES256 is an accepted algorithm, but kid k1 is an RSA key: refused (before the fix: a 500)."""
    token = jwt.encode(_idp_claims(), EC_KEY, algorithm="ES256", headers={"kid": "k1"})
    _assert_401(await jwks_client.get(SESSIONS, headers=_bearer(token)), "Invalid or expired token")


async def test_jwks_foreign_key_and_claims_refused(jwks_client: httpx.AsyncClient) -> None:
    cases = [
        (_rs(_idp_claims(), key=OTHER_RSA_KEY), "Invalid or expired token"),
        (_rs(_idp_claims() | {"iss": "https://evil.test/"}), "Invalid or expired token"),
        (_rs(_idp_claims() | {"aud": "other"}), "Invalid or expired token"),
        (_rs(_idp_claims() | {"exp": int(time.time()) - 120}), "Invalid or expired token"),
        (_rs(_idp_claims() | {"nbf": int(time.time()) + 300}), "Invalid or expired token"),
        (_rs(_idp_claims(str(uuid.uuid4()))), "Unknown or inactive user"),
        (_rs(_idp_claims(U_OFF)), "Unknown or inactive user"),
    ]
    for token, message in cases:
        _assert_401(await jwks_client.get(SESSIONS, headers=_bearer(token)), message)


async def test_unknown_kids_do_not_flood_the_identity_provider(
    jwks_client: httpx.AsyncClient, jwks: _JWKS
) -> None:
    for n in range(6):
        token = _rs(_idp_claims(), kid=f"made-up-{n}")
        _assert_401(
            await jwks_client.get(SESSIONS, headers=_bearer(token)),
            "Token signing key not recognised",
        )
    # The first unknown kid loads the set and refreshes it once; the rest wait for the refresh interval.
    assert jwks.fetches == 2
    assert (await jwks_client.get(SESSIONS, headers=_bearer(_rs(_idp_claims())))).status_code == 200
    assert jwks.fetches == 2


async def test_jwks_unreachable_is_401(database_url: str) -> None:
    settings = make_settings(
        database_url, jwt_jwks_url="http://127.0.0.1:1/jwks.json", jwt_algorithms=["RS256"]
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        r = await client.get(SESSIONS, headers=_bearer(_rs(_idp_claims())))
    await close_app(app)
    _assert_401(r, "Token signing keys are unavailable")


def test_production_refuses_the_default_or_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="must be set to a real secret in production"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(jwt_secret="short-secret")
    assert Settings(environment="production", jwt_secret="x" * 32).environment == "production"
