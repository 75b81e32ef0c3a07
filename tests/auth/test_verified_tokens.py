"""The verifier remembers a verified token's user for a short while, never past the token's expiry and
never for a token that failed a check."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest

from tests.conftest import make_settings
from therapy_scheduler.auth import tokens
from therapy_scheduler.auth.tokens import TokenVerifier, mint_token
from therapy_scheduler.errors import Unauthorized


def _verifier(**overrides: object) -> TokenVerifier:
    return TokenVerifier(make_settings("sqlite+aiosqlite://", **overrides))


def _token(secret: str, user: uuid.UUID, expires_at: float) -> str:
    return jwt.encode(
        {"sub": str(user), "exp": int(expires_at), "iat": int(time.time())},
        secret,
        algorithm="HS256",
    )


async def test_a_remembered_token_still_expires_on_time() -> None:
    verifier = _verifier(jwt_leeway_seconds=0)
    user = uuid.uuid4()
    token = _token(verifier.settings.jwt_secret, user, time.time() + 2)
    assert await verifier.user_id(token) == user
    assert await verifier.user_id(token) == user  # remembered
    await asyncio.sleep(max(0.0, int(time.time() + 2) - time.time()) + 0.1)
    with pytest.raises(Unauthorized):
        await verifier.user_id(token)


async def test_a_token_is_verified_again_after_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = _verifier()
    user = uuid.uuid4()
    token = mint_token(verifier.settings, user, expires_in=3600)
    assert await verifier.user_id(token) == user
    # The signing secret changes (a key rotation): within the minute the remembered answer stands,
    # after it the token is checked again and refused.
    verifier.settings = make_settings(
        "sqlite+aiosqlite://", jwt_secret="another-secret-" + "x" * 32
    )
    assert await verifier.user_id(token) == user
    later = time.time() + tokens.VERIFIED_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(Unauthorized):
        await verifier.user_id(token)


async def test_refused_tokens_are_not_remembered() -> None:
    verifier = _verifier()
    user = uuid.uuid4()
    forged = _token("not-the-secret-" + "y" * 32, user, time.time() + 3600)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await verifier.user_id(forged)
    assert forged not in verifier._verified


async def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 3)
    verifier = _verifier()
    minted = [mint_token(verifier.settings, uuid.uuid4()) for _ in range(5)]
    for token in minted:
        await verifier.user_id(token)
    assert list(verifier._verified) == minted[-3:]
