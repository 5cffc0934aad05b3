"""Trusting CDS Clients (CDS Hooks 2.0.1): verify the client's signed JWT.

A CDS client sends `Authorization: Bearer <JWT>` with header `alg`, `kid`, `typ: JWT` and
optionally `jku`, and claims `iss`, `aud` (the exact URL called), `exp`, `iat`, `jti`.

What is checked, in order:

1. the header is `Bearer <one compact JWS>` of bounded size;
2. `alg` is asymmetric (ES/RS/PS 256/384/512) — never `none` or HMAC — and `kid` is present;
3. `iss` is a trusted issuer (`CDS_TRUSTED_ISSUERS_FILE`, plus the public sandbox when
   `CDS_TRUST_SANDBOX` is on);
4. a `jku`, when sent, is one of that issuer's allowed URLs — an arbitrary `jku` is never fetched;
5. the key `kid` comes from the issuer's static JWKS or from the JWKS at an allowed `jku`, kept in a
   cache and re-fetched when `kid` is unknown (at most once a minute per URL);
6. the key's type and curve fit `alg`, and the signature verifies;
7. `aud` equals the URL called; `exp` is in the future and `iat` not in the future (60 s leeway),
   and the token lives at most `MAX_TOKEN_LIFETIME` seconds;
8. `jti` has not been seen before from that issuer (a bounded cache that forgets expired tokens,
   kept in the service's SQLite database so that every gunicorn worker shares it).

The pieces live in their own modules: `jwks` (keys and the JWKS cache), `issuers` (whom to trust),
`replay` (the `jti` caches) and `auth_errors` (`AuthenticationFailed`); this module runs the checks.

`AuthenticationFailed.reason` is a short fixed code safe to log; no exception message ever
contains the token or any of its claims.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping

import jwt
from sqlalchemy.exc import SQLAlchemyError

from service.security.auth_errors import AuthenticationFailed
from service.security.issuers import TrustedIssuer, check_auth_settings
from service.security.jwks import ALLOWED_ALGORITHMS, JwksCache, VerificationKey
from service.security.replay import JTI_LIMIT_PER_ISSUER, DatabaseReplayCache, ReplayCache
from service.storage import Database, DatabaseUrlError

log = logging.getLogger(__name__)

LEEWAY_SECONDS = 60                 # clock skew allowed on exp and iat
MAX_TOKEN_LIFETIME = 900            # exp - iat; the spec's clients use about 5 minutes
MAX_TOKEN_BYTES = 16 * 1024         # a longer Authorization header is refused unparsed


class ClientAuthenticator:
    """`authenticate(header, audience_url)` per `CDS_AUTH_MODE` (required | optional | off)."""

    def __init__(
        self,
        settings: Any,
        *,
        jwks_cache: JwksCache | None = None,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.mode = settings.auth_mode
        self.issuers = check_auth_settings(settings)
        self._jwks = jwks_cache if jwks_cache is not None else JwksCache()
        self._replay = replay_cache if replay_cache is not None else self._default_replay_cache(settings, clock)
        self._clock = clock

    def _default_replay_cache(self, settings: Any, clock: Callable[[], float]) -> ReplayCache | DatabaseReplayCache:
        """Shared by every worker and replica through the service database when there is one."""
        limit = getattr(settings, "jti_limit_per_issuer", JTI_LIMIT_PER_ISSUER)
        if self.mode == "off":
            return ReplayCache(limit, clock=clock)
        try:
            database = Database(settings.database_url)
            database.migrate()
            return DatabaseReplayCache(database, limit, clock=clock)
        except (DatabaseUrlError, AttributeError, OSError, SQLAlchemyError) as exc:
            log.warning("jti replay cache kept in memory (per process)", extra={"error": type(exc).__name__})
            return ReplayCache(limit, clock=clock)

    def authenticate(self, authorization_header: str | None, audience_url: str) -> dict | None:
        """The verified claims; None when no token was sent (or mode off); else AuthenticationFailed."""
        if self.mode == "off":
            return None
        if authorization_header is None or not authorization_header.strip():
            if self.mode == "required":
                raise AuthenticationFailed("missing-token")
            return None
        token = self._bearer_token(authorization_header)
        header = self._header(token)
        alg = header["alg"]
        issuer = self._issuer(token)
        key = self._key(issuer, header)
        if not key.fits(alg):
            raise AuthenticationFailed("key-does-not-fit-alg")
        claims = self._verify(token, key, alg, issuer.iss, audience_url)
        self._replay.add(issuer.iss, claims["jti"], float(claims["exp"]) + LEEWAY_SECONDS)
        return claims

    @staticmethod
    def _bearer_token(value: str) -> str:
        if len(value) > MAX_TOKEN_BYTES:
            raise AuthenticationFailed("token-too-long")
        parts = value.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise AuthenticationFailed("not-bearer")
        token = parts[1]
        if token.count(".") != 2 or not token.isascii():
            raise AuthenticationFailed("malformed-token")
        return token

    @staticmethod
    def _header(token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed("malformed-token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationFailed("algorithm-not-allowed")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthenticationFailed("bad-typ")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise AuthenticationFailed("missing-kid")
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise AuthenticationFailed("malformed-jku")
        if "crit" in header:
            # No extension is understood here, so any critical one makes the token unusable.
            raise AuthenticationFailed("unsupported-crit")
        return header

    def _issuer(self, token: str) -> TrustedIssuer:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationFailed("malformed-token") from None
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthenticationFailed("untrusted-issuer")
        return issuer

    def _key(self, issuer: TrustedIssuer, header: Mapping[str, Any]) -> VerificationKey:
        kid = header["kid"]
        jku = header.get("jku")
        if jku is not None and jku not in issuer.jku:
            raise AuthenticationFailed("jku-not-allowed")
        if kid in issuer.keys:
            return issuer.keys[kid]
        for url in ((jku,) if jku is not None else issuer.jku):
            key = self._jwks.key(url, kid)
            if key is not None:
                return key
        raise AuthenticationFailed("unknown-kid")

    def _verify(self, token: str, key: VerificationKey, alg: str, iss: str, audience_url: str) -> dict:
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=audience_url, issuer=iss,
                options={"require": ["iss", "aud", "exp", "iat", "jti"],
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed("wrong-audience") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("bad-signature") from None
        except jwt.MissingRequiredClaimError:
            raise AuthenticationFailed("missing-claim") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("invalid-token") from None
        now = self._clock()
        exp, iat, nbf, jti = claims.get("exp"), claims.get("iat"), claims.get("nbf"), claims.get("jti")
        if not all(_is_time(v) for v in (exp, iat)) or (nbf is not None and not _is_time(nbf)):
            raise AuthenticationFailed("invalid-time-claims")
        if exp <= now - LEEWAY_SECONDS:
            raise AuthenticationFailed("expired")
        if iat > now + LEEWAY_SECONDS:
            raise AuthenticationFailed("issued-in-future")
        if exp - iat > MAX_TOKEN_LIFETIME or exp <= iat:
            raise AuthenticationFailed("lifetime-too-long")
        if nbf is not None and nbf > now + LEEWAY_SECONDS:
            raise AuthenticationFailed("not-yet-valid")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise AuthenticationFailed("bad-jti")
        return claims


def _is_time(value: Any) -> bool:
    """A NumericDate: a finite number (NaN compares false with everything, so it would pass every check)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
