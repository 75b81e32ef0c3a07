"""Bearer token verification. The token only says who the user is (`sub`); everything else is read
from the database."""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import anyio
import jwt

from therapy_scheduler.config import Settings
from therapy_scheduler.errors import Unauthorized
from therapy_scheduler.kit.time import utcnow

log = logging.getLogger("therapy_scheduler.auth")

JWKS_MIN_REFRESH_SECONDS = 30.0
SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
# A verified token's user is remembered for this long (never past the token's own expiry), so that a
# client's requests verify its signature once a minute rather than on every request. It opens no
# window that key caching does not already have: the JWKS key set itself is cached for 300 s.
VERIFIED_SECONDS = 60.0
VERIFIED_MAX = 4096


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)
            if settings.jwt_jwks_url
            else None
        )
        self._jwks_refreshed: float | None = None
        requested = set(settings.jwt_algorithms)
        # With a JWKS the server accepts only asymmetric algorithms: an HS256 token signed with the
        # public key (HS/RS confusion) is refused before any key is looked at.
        allowed = ASYMMETRIC if self._jwks else SYMMETRIC
        self.algorithms = sorted((requested & allowed) or (allowed & {"RS256", "HS256"}))
        # token -> (its user, until when (epoch seconds) that answer may be reused); LRU-bounded.
        # Only tokens that passed every check get here, so refused tokens cannot fill it.
        self._verified: OrderedDict[str, tuple[uuid.UUID, float]] = OrderedDict()

    async def user_id(self, token: str) -> uuid.UUID:
        remembered = self._verified.get(token)
        if remembered is not None:
            if time.time() < remembered[1]:
                self._verified.move_to_end(token)
                return remembered[0]
            del self._verified[token]
        user, expires = await self._verify(token)
        self._verified[token] = (user, min(expires, time.time() + VERIFIED_SECONDS))
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return user

    async def _verify(self, token: str) -> tuple[uuid.UUID, float]:
        """The token's user and the instant (epoch seconds) it stops being accepted."""
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
                # The whole JWK, not just its key: PyJWT then also refuses a token whose `alg` does
                # not match the key's own algorithm (an ES256 header on an RSA key, say).
                key = await anyio.to_thread.run_sync(self._signing_key, jwks, header.get("kid"))
            except jwt.PyJWKClientConnectionError as exc:
                log.warning("JWKS unavailable: %s", type(exc).__name__)
                raise Unauthorized("Token signing keys are unavailable") from exc
            except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
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
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            # TypeError/ValueError: a key that does not fit the algorithm; a refusal, never a 500.
            raise Unauthorized("Invalid or expired token") from exc
        try:
            user = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("Invalid token subject") from exc
        return user, float(claims["exp"]) + self.settings.jwt_leeway_seconds

    def _signing_key(self, jwks: jwt.PyJWKClient, kid: object) -> jwt.PyJWK:
        """The JWKS key named by `kid` (or the only key when the token names none). An unknown kid
        refetches the key set at most once per JWKS_MIN_REFRESH_SECONDS, so tokens with made-up kids
        cannot turn this service into a flood against the identity provider."""
        keys = jwks.get_signing_keys()
        match = _pick(keys, kid)
        now = time.monotonic()
        if match is None and (
            self._jwks_refreshed is None or now - self._jwks_refreshed >= JWKS_MIN_REFRESH_SECONDS
        ):
            self._jwks_refreshed = now
            match = _pick(jwks.get_signing_keys(refresh=True), kid)
        if match is None:
            raise jwt.PyJWKClientError("unknown signing key")
        return match

    async def subject(self, token: str) -> str | None:
        """The verified user id of a token as text, or None: for the rate limiter's bucket choice."""
        try:
            return str(await self.user_id(token))
        except Unauthorized:
            return None


def _pick(keys: list[jwt.PyJWK], kid: object) -> jwt.PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.key_id == kid), None)


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
