"""The keys that verify a CDS client's JWT: JWKS parsing and the cache of fetched JWKS documents.

Both a configured (static) JWKS and one fetched from an issuer's allowlisted `jku` become the same
`VerificationKey`s, and only asymmetric signing keys whose type and curve fit the token's `alg`
are ever used. Fetching is bounded (timeout, size cap, no redirects) and rate limited per URL, so
a flood of tokens with unknown `kid`s cannot turn the service into a request amplifier.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jwt
import requests

from service.metrics import cache_lookup

# Logged under the name these records had before the module was split, so log filters keep working.
log = logging.getLogger("service.security.client_auth")

ALLOWED_ALGORITHMS = frozenset({
    "ES256", "ES384", "ES512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
})
_EC_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

MAX_JWKS_BYTES = 64 * 1024          # a larger JWKS document is not read
JWKS_REFRESH_INTERVAL = 60.0        # at most one fetch per jku per this many seconds
JWKS_MAX_AGE = 3600.0               # a cached JWKS older than this is fetched again when used
JWKS_CONNECT_TIMEOUT = 2.0
JWKS_READ_TIMEOUT = 3.0


@dataclass(frozen=True)
class VerificationKey:
    """A public key from a JWKS, with what it may verify."""

    kid: str
    kty: str                        # EC | RSA
    crv: str | None                 # P-256 | P-384 | P-521 for EC keys
    alg: str | None                 # the JWK's declared `alg`, if any
    key: Any                        # a cryptography public key object

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        if alg.startswith("ES"):
            return self.kty == "EC" and self.crv == _EC_CURVE_FOR_ALG[alg]
        return self.kty == "RSA" and self.key.key_size >= 2048


def parse_jwks(document: Any, where: str, strict: bool = True) -> dict[str, VerificationKey]:
    """Public signing keys of a JWKS by kid.

    Only EC and RSA keys with a kid can verify; symmetric (`oct`) keys never. `strict` (a configured
    JWKS) refuses the whole set for one bad key, so the operator hears of it at start-up; a fetched
    JWKS (`strict=False`) just skips keys it cannot use.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{where}: a JWKS is an object with a `keys` list")
    keys: dict[str, VerificationKey] = {}
    for index, entry in enumerate(document["keys"]):
        try:
            key = _parse_jwk(entry, f"{where}: keys[{index}]")
        except ValueError:
            if strict:
                raise
            continue
        if key is not None:
            keys[key.kid] = key
    return keys


def _parse_jwk(entry: Any, where: str) -> VerificationKey | None:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} is not an object")
    kty = entry.get("kty")
    kid = entry.get("kid")
    if kty not in ("EC", "RSA"):
        raise ValueError(f"{where} has kty {kty!r}; only EC and RSA keys are trusted")
    if not isinstance(kid, str) or not kid:
        raise ValueError(f"{where} has no kid")
    if entry.get("use") not in (None, "sig"):
        return None                     # published for encryption: not a signing key
    alg = entry.get("alg")
    if alg is not None and alg not in ALLOWED_ALGORITHMS:
        raise ValueError(f"{where} has alg {alg!r}, not an allowed asymmetric algorithm")
    public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
    try:
        parsed = jwt.PyJWK.from_dict(public)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where} ({kid}) is not a usable key: {type(exc).__name__}") from None
    return VerificationKey(kid=kid, kty=kty, crv=entry.get("crv"), alg=alg, key=parsed.key)


def _session() -> requests.Session:
    session = requests.Session()
    # Keys come from the issuer's own URL: no proxy from HTTP(S)_PROXY, no credentials from .netrc.
    session.trust_env = False
    return session


class JwksCache:
    """JWKS documents by URL, fetched with a timeout and a size cap, refreshed at most once a minute.

    Only URLs a caller has already checked against an issuer's allowlist reach `key()`.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = JWKS_REFRESH_INTERVAL,
        max_age: float = JWKS_MAX_AGE,
        max_bytes: int = MAX_JWKS_BYTES,
        timeout: tuple[float, float] = (JWKS_CONNECT_TIMEOUT, JWKS_READ_TIMEOUT),
    ):
        self._session = session or _session()
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._keys: dict[str, dict[str, VerificationKey]] = {}
        self._fetched_at: dict[str, float] = {}     # last successful fetch
        self._attempted_at: dict[str, float] = {}   # last attempt, successful or not
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}

    def key(self, url: str, kid: str) -> VerificationKey | None:
        now = self._clock()
        keys = self._keys.get(url)
        fresh = keys is not None and now - self._fetched_at.get(url, float("-inf")) < self._max_age
        cache_lookup("jwks", fresh and kid in keys)
        if fresh and kid in keys:
            return keys[kid]
        # Unknown kid, stale or never fetched: fetch, unless this URL was tried within the interval.
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            now = self._clock()
            keys = self._keys.get(url)
            if keys is not None and kid in keys and now - self._fetched_at.get(url, float("-inf")) < self._max_age:
                return keys[kid]            # another thread fetched it meanwhile
            last = self._attempted_at.get(url)
            if last is None or now - last >= self._refresh_interval:
                self._attempted_at[url] = now
                fetched = self._fetch(url)
                if fetched is not None:
                    self._keys[url] = keys = fetched
                    self._fetched_at[url] = now
        return keys.get(kid) if keys is not None else None

    def _fetch(self, url: str) -> dict[str, VerificationKey] | None:
        try:
            with self._session.get(url, timeout=self._timeout, stream=True, allow_redirects=False,
                                   headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    log.warning("jwks fetch refused", extra={"jku": url, "status": response.status_code})
                    return None
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                    log.warning("jwks too large", extra={"jku": url})
                    return None
                body = bytearray()
                for chunk in response.iter_content(chunk_size=8192):
                    body.extend(chunk)
                    if len(body) > self._max_bytes:
                        log.warning("jwks too large", extra={"jku": url})
                        return None
            return parse_jwks(json.loads(bytes(body)), "jwks", strict=False)
        except requests.RequestException as exc:
            log.warning("jwks fetch failed", extra={"jku": url, "error": type(exc).__name__})
        except ValueError as exc:
            log.warning("jwks unusable", extra={"jku": url, "error": str(exc)[:200]})
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the answer is "no key", not a 500
            log.warning("jwks fetch failed", extra={"jku": url, "error": type(exc).__name__})
        return None
