"""Bearer token verification. The token only says who the user is (`sub`); everything else is read
from the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import anyio
import jwt

from therapy_scheduler.config import Settings
from therapy_scheduler.errors import Unauthorized
from therapy_scheduler.kit.time import utcnow

SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            if settings.jwt_jwks_url
            else None
        )
        requested = set(settings.jwt_algorithms)
        # With a JWKS the server accepts only asymmetric algorithms: an HS256 token signed with the
        # public key (HS/RS confusion) is refused before any key is looked at.
        allowed = ASYMMETRIC if self._jwks else SYMMETRIC
        self.algorithms = sorted((requested & allowed) or (allowed & {"RS256", "HS256"}))

    async def user_id(self, token: str) -> uuid.UUID:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("Malformed bearer token") from exc
        if header.get("alg") not in self.algorithms:
            raise Unauthorized("Token algorithm not accepted")
        key: Any
        if self._jwks is not None:
            jwks = self._jwks
            try:
                key = (await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWTError as exc:
                raise Unauthorized("Token signing key not recognised") from exc
        else:
            key = self.settings.jwt_secret
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": self.settings.jwt_audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid or expired token") from exc
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("Invalid token subject") from exc


def mint_token(settings: Settings, user_id: uuid.UUID, *, expires_in: int = 3600) -> str:
    """An HS256 token for development and tests (production uses the identity provider's tokens)."""
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=expires_in)).timestamp()),
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
