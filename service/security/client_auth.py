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

`AuthenticationFailed.reason` is a short fixed code safe to log; no exception message ever
contains the token or any of its claims.
"""
from __future__ import annotations

import heapq
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import jwt
import requests

from service.settings import SettingsError

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset({
    "ES256", "ES384", "ES512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
})
_EC_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_FILE = Path(__file__).resolve().parent / "sandbox_jwks.json"

LEEWAY_SECONDS = 60                 # clock skew allowed on exp and iat
MAX_TOKEN_LIFETIME = 900            # exp - iat; the spec's clients use about 5 minutes
MAX_TOKEN_BYTES = 16 * 1024         # a longer Authorization header is refused unparsed
MAX_JWKS_BYTES = 64 * 1024          # a larger JWKS document is not read
JWKS_REFRESH_INTERVAL = 60.0        # at most one fetch per jku per this many seconds
JWKS_MAX_AGE = 3600.0               # a cached JWKS older than this is fetched again when used
JWKS_CONNECT_TIMEOUT = 2.0
JWKS_READ_TIMEOUT = 3.0
REPLAY_CACHE_SIZE = 100_000         # jti values remembered; when full of live ones, tokens are refused


class AuthenticationFailed(Exception):
    """The client's JWT is missing, malformed, untrusted or invalid.

    `reason` is a fixed code (e.g. `untrusted-issuer`) for logs; it never carries token data.
    The HTTP answer to any of them is the same bare 401.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jku: tuple[str, ...]
    keys: Mapping[str, VerificationKey]   # static keys by kid


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _check_jku_url(url: Any, where: str) -> str:
    if not isinstance(url, str) or not url or url != url.strip() or any(c.isspace() for c in url):
        raise SettingsError(f"{where}: jku entries must be URLs without whitespace")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise SettingsError(f"{where}: jku {url!r} must not carry user info or a fragment")
    if not parts.hostname or not (parts.scheme == "https" or _is_loopback_http(url)):
        raise SettingsError(f"{where}: jku {url!r} must be https (plain http only on loopback)")
    return url


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


def load_trusted_issuers(path: str | Path | None, trust_sandbox: bool = False) -> dict[str, TrustedIssuer]:
    """Read the trusted-issuers file: a JSON list of `{"iss", "jku": [urls], "jwks": {JWKS}}`."""
    issuers: dict[str, TrustedIssuer] = {}
    if path:
        where = str(path)
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: cannot read ({exc.strerror})") from None
        except ValueError as exc:
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: not JSON ({exc})") from None
        if not isinstance(document, list):
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: expected a JSON list of issuers")
        for index, entry in enumerate(document):
            here = f"CDS_TRUSTED_ISSUERS_FILE {where} [{index}]"
            if not isinstance(entry, Mapping):
                raise SettingsError(f"{here}: expected an object")
            unknown = set(entry) - {"iss", "jku", "jwks"}
            if unknown:
                raise SettingsError(f"{here}: unknown field(s) {sorted(unknown)}")
            iss = entry.get("iss")
            if not isinstance(iss, str) or not iss.strip() or iss != iss.strip():
                raise SettingsError(f"{here}: `iss` must be a non-empty string")
            jku = entry.get("jku", [])
            if isinstance(jku, str):
                jku = [jku]
            if not isinstance(jku, list):
                raise SettingsError(f"{here}: `jku` must be a list of URLs")
            allowed = tuple(_check_jku_url(url, here) for url in jku)
            keys: dict[str, VerificationKey] = {}
            if "jwks" in entry:
                try:
                    keys = parse_jwks(entry["jwks"], f"{here} jwks")
                except ValueError as exc:
                    raise SettingsError(str(exc)) from None
            if not allowed and not keys:
                raise SettingsError(f"{here}: give `jku` URLs, a static `jwks`, or both")
            if iss in issuers:
                raise SettingsError(f"{here}: issuer {iss!r} is listed twice")
            issuers[iss] = TrustedIssuer(iss=iss, jku=allowed, keys=keys)
    if trust_sandbox and SANDBOX_ISSUER not in issuers:
        sandbox_keys = parse_jwks(json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8")), "sandbox JWKS")
        issuers[SANDBOX_ISSUER] = TrustedIssuer(iss=SANDBOX_ISSUER, jku=(SANDBOX_JKU,), keys=sandbox_keys)
    return issuers


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
        self._session = session or requests.Session()
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


class ReplayCache:
    """Seen `(iss, jti)` pairs until their token expires; bounded, thread-safe."""

    def __init__(self, max_entries: int = REPLAY_CACHE_SIZE, clock: Callable[[], float] = time.time):
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires:
                del self._expiry[key]

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        """Remember a jti; raise AuthenticationFailed when it was seen or the cache is full."""
        key = (iss, jti)
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._expiry:
                raise AuthenticationFailed("replayed-jti")
            if len(self._expiry) >= self._max:
                raise AuthenticationFailed("replay-cache-full")
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))


class SqliteReplayCache:
    """Seen `(iss, jti)` pairs in the service's SQLite database, shared by every worker process.

    An in-memory cache is per process: behind gunicorn with N workers a replayed token would
    reach another worker and pass. Rows live until their token expires (at most
    `MAX_TOKEN_LIFETIME` plus leeway), which bounds the table by the request rate; `max_entries`
    is a hard cap on top. Commits do not fsync (WAL, synchronous=NORMAL): a replay cache needs
    to survive a worker crash, not a power cut. Any database error refuses the token.
    """

    TABLE = "cds_client_jti"

    def __init__(self, path: str | Path, max_entries: int = REPLAY_CACHE_SIZE, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max = max_entries
        self._clock = clock
        self._local = threading.local()
        db = self._db()
        db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (iss TEXT NOT NULL, jti TEXT NOT NULL, "
                   "expires_at REAL NOT NULL, PRIMARY KEY (iss, jti)) WITHOUT ROWID")
        db.execute(f"CREATE INDEX IF NOT EXISTS {self.TABLE}_expiry ON {self.TABLE} (expires_at)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            self._local.db = db
        return db

    def __len__(self) -> int:
        return self._db().execute(f"SELECT count(*) FROM {self.TABLE} WHERE expires_at > ?",
                                  (self._clock(),)).fetchone()[0]

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        now = self._clock()
        try:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"DELETE FROM {self.TABLE} WHERE expires_at <= ?", (now,))
                if db.execute(f"SELECT count(*) FROM {self.TABLE}").fetchone()[0] >= self._max:
                    raise AuthenticationFailed("replay-cache-full")
                db.execute(f"INSERT INTO {self.TABLE} (iss, jti, expires_at) VALUES (?, ?, ?)", (iss, jti, expires_at))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise AuthenticationFailed("replayed-jti") from None
        except sqlite3.Error as exc:
            log.error("replay cache unavailable", extra={"error": type(exc).__name__})
            raise AuthenticationFailed("replay-cache-unavailable") from None


def check_auth_settings(settings: Any) -> list:
    """The trusted issuers, after checking that the auth settings can work; raises SettingsError.

    Cheap and side-effect free, so `mecasermin-cds serve` runs it before forking workers."""
    mode = settings.auth_mode
    if mode not in ("required", "optional", "off"):
        raise SettingsError(f"CDS_AUTH_MODE must be required, optional or off, not {mode!r}")
    issuers = load_trusted_issuers(settings.trusted_issuers_file, settings.trust_sandbox)
    if mode == "required" and not issuers:
        raise SettingsError(
            "CDS_AUTH_MODE=required needs CDS_TRUSTED_ISSUERS_FILE (or CDS_TRUST_SANDBOX for development)")
    if mode != "off" and not getattr(settings, "public_base_url", ""):
        # Without it the caller's Host header decides the URL that `aud` is compared with, so a
        # token minted for another service could be replayed here under that service's name.
        message = ("CDS_PUBLIC_BASE_URL is empty: the JWT `aud` is compared with a URL built from the "
                   "request's Host header")
        if mode == "required":
            raise SettingsError(f"CDS_AUTH_MODE=required needs CDS_PUBLIC_BASE_URL ({message})")
        log.warning(message)
    return issuers


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

    def _default_replay_cache(self, settings: Any, clock: Callable[[], float]) -> ReplayCache | SqliteReplayCache:
        """Shared across worker processes in the service database when there is one."""
        if self.mode == "off":
            return ReplayCache(clock=clock)
        try:
            return SqliteReplayCache(settings.database_path, clock=clock)
        except (SettingsError, AttributeError, OSError, sqlite3.Error) as exc:
            log.warning("jti replay cache kept in memory (per process)", extra={"error": type(exc).__name__})
            return ReplayCache(clock=clock)

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
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
            raise AuthenticationFailed("invalid-time-claims")
        if exp <= now - LEEWAY_SECONDS:
            raise AuthenticationFailed("expired")
        if iat > now + LEEWAY_SECONDS:
            raise AuthenticationFailed("issued-in-future")
        if exp - iat > MAX_TOKEN_LIFETIME or exp <= iat:
            raise AuthenticationFailed("lifetime-too-long")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now + LEEWAY_SECONDS):
            raise AuthenticationFailed("not-yet-valid")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise AuthenticationFailed("bad-jti")
        return claims
