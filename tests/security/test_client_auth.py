"""Trusting CDS clients: every way a JWT can be wrong is refused, and only then."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.security.jwt_helpers import (
    AUDIENCE, EHR_ISS, EHR_JKU, PARTNER_ISS, PARTNER_JKU,
    claims, ec_key, hmac_signed, public_jwk, rsa_key, sign, unsigned,
)
from service.security.auth_errors import AuthenticationFailed
from service.security.client_auth import ClientAuthenticator
from service.security.issuers import SANDBOX_ISSUER, SANDBOX_JKU, load_trusted_issuers
from service.security.jwks import MAX_JWKS_BYTES, JwksCache
from service.security.replay import DatabaseReplayCache, ReplayCache
from service.storage import Database
from service.settings import Settings, SettingsError


BASE_URL = AUDIENCE.split("/cds-services/")[0]


class FakeClock:
    def __init__(self, start: float = 1_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def own_database(tmp_path, monkeypatch):
    """The default CDS_DATABASE_URL is relative: each test gets its own (the jti table lives there)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def ehr_key():
    return ec_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def partner_key():
    return rsa_key()


@pytest.fixture(scope="module")
def rotated_key():
    return rsa_key()


@pytest.fixture
def issuers_file(tmp_path, ehr_key):
    """The EHR publishes a static ES384 key and may also point at its jku; the partner only has a jku."""
    path = tmp_path / "trusted-issuers.json"
    path.write_text(json.dumps([
        {"iss": EHR_ISS, "jku": [EHR_JKU], "jwks": {"keys": [public_jwk(ehr_key, "ehr-2025-1", "ES384")]}},
        {"iss": PARTNER_ISS, "jku": [PARTNER_JKU]},
    ]))
    return str(path)


def make_auth(issuers_file, mode="required", trust_sandbox=False, clock=None, jwks_clock=None):
    settings = Settings(auth_mode=mode, trusted_issuers_file=issuers_file, trust_sandbox=trust_sandbox,
                        public_base_url=BASE_URL)
    jwks = JwksCache(clock=jwks_clock) if jwks_clock else None
    return ClientAuthenticator(settings, jwks_cache=jwks, **({"clock": clock} if clock else {}))


def bearer(token: str) -> str:
    return f"Bearer {token}"


def reason(auth, header, audience=AUDIENCE) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate(header, audience)
    return caught.value.reason


# ----------------------------------------------------------------------------- accepted tokens

def test_static_es384_key_verifies_and_claims_are_returned(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    payload = claims()
    with responses.RequestsMock() as mock:     # a static key needs no HTTP at all
        verified = auth.authenticate(bearer(sign(ehr_key, "ES384", "ehr-2025-1", payload)), AUDIENCE)
        assert len(mock.calls) == 0
    assert verified["iss"] == EHR_ISS and verified["jti"] == payload["jti"]
    assert verified["tenant"] == payload["tenant"]


def test_jku_key_is_fetched_once_then_cached(issuers_file, partner_key):
    auth = make_auth(issuers_file)
    jwks = {"keys": [public_jwk(partner_key, "partner-1", "RS384")]}
    with responses.RequestsMock() as mock:
        mock.get(PARTNER_JKU, json=jwks)
        for _ in range(3):
            token = sign(partner_key, "RS384", "partner-1", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
            assert auth.authenticate(bearer(token), AUDIENCE)["iss"] == PARTNER_ISS
        assert len(mock.calls) == 1


def test_issuer_jku_used_when_token_has_no_jku_header(issuers_file, partner_key):
    auth = make_auth(issuers_file)
    with responses.RequestsMock() as mock:
        mock.get(PARTNER_JKU, json={"keys": [public_jwk(partner_key, "partner-1")]})
        token = sign(partner_key, "PS256", "partner-1", claims(iss=PARTNER_ISS))
        assert auth.authenticate(bearer(token), AUDIENCE)["iss"] == PARTNER_ISS


def test_audience_list_containing_the_url_is_accepted(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(aud=["https://other.example.org", AUDIENCE]))
    assert auth.authenticate(bearer(token), AUDIENCE)["aud"][1] == AUDIENCE


def test_small_clock_skew_is_tolerated(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    now = int(time.time())
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(iat=now + 30, exp=now + 330))
    assert auth.authenticate(bearer(token), AUDIENCE)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(iat=now - 330, exp=now - 30))
    assert auth.authenticate(bearer(token), AUDIENCE)


# ----------------------------------------------------------------------------- algorithm attacks

def test_hs256_signed_with_the_public_key_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    pem = ehr_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = hmac_signed(pem, {"alg": "HS256", "typ": "JWT", "kid": "ehr-2025-1"}, claims())
    assert reason(auth, bearer(token)) == "algorithm-not-allowed"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS384", "HS512", "EdDSA", "ES256K", ""])
def test_unsafe_or_unknown_algorithms_are_refused(issuers_file, alg):
    auth = make_auth(issuers_file)
    token = unsigned({"alg": alg, "typ": "JWT", "kid": "ehr-2025-1"}, claims())
    assert reason(auth, bearer(token)) == "algorithm-not-allowed"


def test_alg_missing_from_header_is_refused(issuers_file):
    auth = make_auth(issuers_file)
    assert reason(auth, bearer(unsigned({"typ": "JWT", "kid": "ehr-2025-1"}, claims()))) == "algorithm-not-allowed"


def test_key_of_another_curve_than_alg_is_refused(tmp_path):
    p256 = ec_key(ec.SECP256R1())
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(p256, "p256")]}}]))
    auth = make_auth(str(path))
    # A token claiming ES384 for a P-256 key: PyJWT would refuse too, but we refuse first.
    token = unsigned({"alg": "ES384", "typ": "JWT", "kid": "p256"}, claims(), b"x" * 96)
    assert reason(auth, bearer(token)) == "key-does-not-fit-alg"
    assert auth.authenticate(bearer(sign(p256, "ES256", "p256", claims())), AUDIENCE)


def test_rsa_key_with_an_ec_alg_is_refused(tmp_path, partner_key):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(partner_key, "rsa")]}}]))
    auth = make_auth(str(path))
    token = unsigned({"alg": "ES256", "typ": "JWT", "kid": "rsa"}, claims(), b"x" * 64)
    assert reason(auth, bearer(token)) == "key-does-not-fit-alg"


def test_jwk_declared_alg_must_match_header(tmp_path, partner_key):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(partner_key, "rsa", "RS384")]}}]))
    auth = make_auth(str(path))
    assert reason(auth, bearer(sign(partner_key, "PS384", "rsa", claims()))) == "key-does-not-fit-alg"
    assert auth.authenticate(bearer(sign(partner_key, "RS384", "rsa", claims())), AUDIENCE)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_rsa_keys_below_2048_bits_are_refused(tmp_path):
    weak = rsa_key(1024)
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(weak, "weak")]}}]))
    auth = make_auth(str(path))
    assert reason(auth, bearer(sign(weak, "RS256", "weak", claims()))) == "key-does-not-fit-alg"


def test_signature_by_another_key_with_a_trusted_kid_is_refused(issuers_file):
    forger = ec_key(ec.SECP384R1())
    auth = make_auth(issuers_file)
    assert reason(auth, bearer(sign(forger, "ES384", "ehr-2025-1", claims()))) == "bad-signature"


def test_tampered_payload_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims())
    head, _, signature = token.split(".")
    forged_body = sign(ehr_key, "ES384", "ehr-2025-1", claims(tenant="another-tenant")).split(".")[1]
    assert reason(auth, bearer(f"{head}.{forged_body}.{signature}")) == "bad-signature"


# ----------------------------------------------------------------------------- claims

def test_wrong_audience_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    for aud in ("https://cds.example.org/cds-services/other-service",
                "https://cds.example.org/cds-services/mecasermin-order-select/",
                "https://evil.example.org/cds-services/mecasermin-order-select"):
        token = sign(ehr_key, "ES384", "ehr-2025-1", claims(aud=aud))
        assert reason(auth, bearer(token)) == "wrong-audience"


def test_expired_token_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    now = int(time.time())
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(iat=now - 600, exp=now - 120))
    assert reason(auth, bearer(token)) == "expired"


def test_token_issued_in_the_future_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    now = int(time.time())
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(iat=now + 600, exp=now + 800))
    assert reason(auth, bearer(token)) == "issued-in-future"


def test_long_lived_token_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    now = int(time.time())
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(iat=now, exp=now + 86_400))
    assert reason(auth, bearer(token)) == "lifetime-too-long"


def test_not_before_in_the_future_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(nbf=int(time.time()) + 600))
    assert reason(auth, bearer(token)) == "not-yet-valid"


@pytest.mark.parametrize("missing", ["aud", "exp", "iat", "jti"])
def test_required_claims(issuers_file, ehr_key, missing):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(**{missing: None}))
    assert reason(auth, bearer(token)) in ("missing-claim", "wrong-audience")


def test_non_numeric_time_claims_are_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(exp="tomorrow"))
    assert reason(auth, bearer(token)) in ("invalid-time-claims", "invalid-token")


@pytest.mark.parametrize("claim,value", [("iat", float("nan")), ("exp", float("nan")), ("nbf", float("nan")),
                                         ("iat", float("-inf")), ("exp", float("inf")), ("nbf", float("-inf")),
                                         ("nbf", "yesterday"), ("nbf", True)])
def test_time_claims_must_be_finite_numbers(issuers_file, ehr_key, claim, value):
    # Every comparison with NaN is false: `iat: NaN` with a ten-year `exp` passed every check.
    auth = make_auth(issuers_file)
    now = int(time.time())
    payload = claims(**{"exp": now + 10 * 365 * 86_400 if claim == "iat" else now + 300, claim: value})
    token = sign(ehr_key, "ES384", "ehr-2025-1", payload)
    assert reason(auth, bearer(token)) in ("invalid-time-claims", "invalid-token")


def test_untrusted_issuer_is_refused_without_any_fetch(issuers_file):
    stranger = ec_key(ec.SECP384R1())
    auth = make_auth(issuers_file)
    token = sign(stranger, "ES384", "k1", claims(iss="https://stranger.example.com"),
                 jku="https://stranger.example.com/jwks.json")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("https://stranger.example.com/jwks.json", json={"keys": [public_jwk(stranger, "k1")]})
        assert reason(auth, bearer(token)) == "untrusted-issuer"
        assert len(mock.calls) == 0


def test_issuer_compared_exactly(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    for iss in (EHR_ISS + "/", EHR_ISS.upper(), " " + EHR_ISS, EHR_ISS + ".evil.com"):
        assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(iss=iss)))) == "untrusted-issuer"


# ----------------------------------------------------------------------------- replay

def test_replayed_jti_is_refused(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    jti = str(uuid.uuid4())
    assert auth.authenticate(bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(jti=jti))), AUDIENCE)
    # Same jti, freshly signed token: still a replay.
    assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(jti=jti)))) == "replayed-jti"


def test_refused_token_does_not_burn_its_jti(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    jti = str(uuid.uuid4())
    assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(jti=jti, aud="https://x.org")))) \
        == "wrong-audience"
    assert auth.authenticate(bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(jti=jti))), AUDIENCE)


def replay_cache(kind: str, tmp_path, clock, limit: int):
    if kind == "memory":
        return ReplayCache(limit, clock=clock)
    database = Database(f"sqlite:///{tmp_path}/jti.sqlite3")
    database.migrate()
    return DatabaseReplayCache(database, limit, clock=clock)


@pytest.mark.parametrize("kind", ["memory", "database"])
def test_replay_cache_forgets_expired_entries_and_is_bounded_per_issuer(kind, tmp_path):
    clock = FakeClock(10_000)
    cache = replay_cache(kind, tmp_path, clock, limit=2)
    cache.add(EHR_ISS, "a", 10_100)
    with pytest.raises(AuthenticationFailed, match="replayed-jti"):
        cache.add(EHR_ISS, "a", 10_100)
    cache.add(PARTNER_ISS, "a", 10_100)          # same jti, other issuer: a different token
    cache.add(EHR_ISS, "b", 10_500)
    with pytest.raises(AuthenticationFailed, match="replay-cache-full"):
        cache.add(EHR_ISS, "c", 10_500)
    cache.add(PARTNER_ISS, "b", 10_500)          # the EHR at its bound does not lock the partner out
    clock.now = 10_101                            # the "a" entries expire by their own exp
    cache.add(EHR_ISS, "c", 10_500)
    with pytest.raises(AuthenticationFailed, match="replay-cache-full"):
        cache.add(EHR_ISS, "d", 10_600)
    assert len(cache) == 3
    clock.now = 10_501
    cache.add(EHR_ISS, "a", 10_600)               # an expired pair is a new token again
    with pytest.raises(AuthenticationFailed, match="replayed-jti"):
        cache.add(EHR_ISS, "a", 10_600)
    assert len(cache) == 1


@pytest.mark.parametrize("kind", ["memory", "database"])
def test_one_issuer_filling_the_cache_never_locks_out_another(kind, tmp_path):
    """Issue 14 item 5: a flood from one issuer (or heavy legitimate traffic) filled one shared
    cache and refused every client's tokens until the flood's tokens expired."""
    clock = FakeClock(10_000)
    cache = replay_cache(kind, tmp_path, clock, limit=50)
    flooded = 0
    for n in range(200):
        clock.now += 1.01                         # the database cache recounts at most once a second
        try:
            cache.add(EHR_ISS, f"flood-{n}", 11_500)
        except AuthenticationFailed as exc:
            assert exc.reason == "replay-cache-full"
            flooded += 1
    assert flooded == 150
    clock.now += 2                                # past the per-process recount interval
    for n in range(40):
        cache.add(PARTNER_ISS, f"partner-{n}", 10_300)


def test_sustained_legitimate_traffic_is_never_refused():
    """100 tokens a second for 20 minutes, each living 5 minutes: the default bound holds them all."""
    clock = FakeClock(0)
    cache = ReplayCache(clock=clock)
    for n in range(100 * 60 * 20):
        clock.now = n / 100
        cache.add(EHR_ISS, str(n), clock.now + 300 + 60)
    assert len(cache) <= 100 * 360 + 1


def test_replay_is_caught_across_worker_processes(issuers_file, ehr_key, tmp_path):
    """Two authenticators on one database stand for two gunicorn workers."""
    settings = Settings(auth_mode="required", trusted_issuers_file=issuers_file, public_base_url=BASE_URL,
                        database_url=f"sqlite:///{tmp_path}/shared.sqlite3")
    worker_1, worker_2 = ClientAuthenticator(settings), ClientAuthenticator(settings)
    assert isinstance(worker_1._replay, DatabaseReplayCache)
    token = bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims()))
    assert worker_1.authenticate(token, AUDIENCE)
    assert reason(worker_2, token) == "replayed-jti"
    assert reason(ClientAuthenticator(settings), token) == "replayed-jti"    # and after a restart


def test_replay_cache_failure_refuses_the_token(issuers_file, ehr_key, tmp_path):
    database = Database(f"sqlite:///{tmp_path}/jti.sqlite3")
    database.migrate()
    cache = DatabaseReplayCache(database)
    auth = ClientAuthenticator(Settings(auth_mode="required", trusted_issuers_file=issuers_file,
                                        public_base_url=BASE_URL), replay_cache=cache)
    with database.write() as db:
        db.exec_driver_sql("DROP TABLE cds_client_jti")
    assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims()))) == "replay-cache-unavailable"


# ----------------------------------------------------------------------------- key discovery

def test_unknown_kid_refetches_once_per_minute(issuers_file, partner_key, rotated_key):
    clock = FakeClock()
    auth = make_auth(issuers_file, jwks_clock=clock)
    old = {"keys": [public_jwk(partner_key, "partner-1")]}
    new = {"keys": [public_jwk(partner_key, "partner-1"), public_jwk(rotated_key, "partner-2")]}
    with responses.RequestsMock() as mock:
        mock.get(PARTNER_JKU, json=old)
        token = sign(partner_key, "RS256", "partner-1", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
        assert auth.authenticate(bearer(token), AUDIENCE)
        assert len(mock.calls) == 1

        mock.replace(responses.GET, PARTNER_JKU, json=new)
        clock.now += 10                           # the key rotates 10 s later: within the minute
        rotated = sign(rotated_key, "RS256", "partner-2", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
        assert reason(auth, bearer(rotated)) == "unknown-kid"
        assert len(mock.calls) == 1               # no second fetch inside the interval

        clock.now += 60
        rotated = sign(rotated_key, "RS256", "partner-2", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
        assert auth.authenticate(bearer(rotated), AUDIENCE)
        assert len(mock.calls) == 2               # refetched exactly once

        clock.now += 1
        bogus = sign(rotated_key, "RS256", "partner-3", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
        for _ in range(5):
            assert reason(auth, bearer(bogus)) == "unknown-kid"
        assert len(mock.calls) == 2               # an attacker's unknown kids cause no fetch storm


def test_jku_not_in_the_issuers_allowlist_is_never_fetched(issuers_file, partner_key):
    auth = make_auth(issuers_file)
    evil = "https://attacker.example.com/jwks.json"
    internal = "http://169.254.169.254/latest/meta-data/jwks.json"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(evil, json={"keys": [public_jwk(partner_key, "partner-1")]})
        mock.get(internal, json={"keys": [public_jwk(partner_key, "partner-1")]})
        for jku in (evil, internal, EHR_JKU, PARTNER_JKU + "?x=1", PARTNER_JKU.upper()):
            token = sign(partner_key, "RS256", "partner-1", claims(iss=PARTNER_ISS), jku=jku)
            assert reason(auth, bearer(token)) == "jku-not-allowed"
        assert len(mock.calls) == 0


def test_jwks_fetch_failures_are_refusals_not_errors(issuers_file, partner_key):
    token_for = lambda: sign(partner_key, "RS256", "partner-1", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)  # noqa: E731
    failures = [
        dict(status=500, body="upstream error"),
        dict(status=200, body="<html>not json</html>"),
        dict(status=200, json={"keys": "not-a-list"}),
        dict(status=200, body=json.dumps({"keys": [public_jwk(partner_key, "partner-1")]}) + " " * MAX_JWKS_BYTES),
        dict(status=302, headers={"Location": "https://attacker.example.com/jwks.json"}),
        dict(body=requests.ConnectionError("connection reset")),
        dict(body=requests.ReadTimeout("read timed out")),
    ]
    for failure in failures:
        auth = make_auth(issuers_file)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(PARTNER_JKU, **failure)
            mock.get("https://attacker.example.com/jwks.json", json={"keys": [public_jwk(partner_key, "partner-1")]})
            assert reason(auth, bearer(token_for())) == "unknown-kid", failure
            assert [c.request.url for c in mock.calls] == [PARTNER_JKU]


def test_fetched_jwks_skips_symmetric_and_unusable_keys(issuers_file, partner_key):
    auth = make_auth(issuers_file)
    jwks = {"keys": [
        {"kty": "oct", "kid": "partner-1", "k": "c2VjcmV0", "alg": "HS256"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        public_jwk(partner_key, "partner-1"),
    ]}
    with responses.RequestsMock() as mock:
        mock.get(PARTNER_JKU, json=jwks)
        token = sign(partner_key, "RS256", "partner-1", claims(iss=PARTNER_ISS), jku=PARTNER_JKU)
        assert auth.authenticate(bearer(token), AUDIENCE)


def test_stale_jwks_is_refetched_after_max_age(partner_key):
    clock = FakeClock()
    cache = JwksCache(clock=clock, max_age=3600)
    with responses.RequestsMock() as mock:
        mock.get(PARTNER_JKU, json={"keys": [public_jwk(partner_key, "partner-1")]})
        assert cache.key(PARTNER_JKU, "partner-1") is not None
        clock.now += 1800
        assert cache.key(PARTNER_JKU, "partner-1") is not None
        assert len(mock.calls) == 1
        mock.replace(responses.GET, PARTNER_JKU, json={"keys": []})   # the key was revoked
        clock.now += 1801
        assert cache.key(PARTNER_JKU, "partner-1") is None
        assert len(mock.calls) == 2


# ----------------------------------------------------------------------------- malformed input

@pytest.mark.parametrize("header", [
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Token abc.def.ghi",
    "Bearer a.b",
    "Bearer a.b.c",
    "Bearer ...",
    "Bearer eyJhbGciOiJFUzM4NCJ9.bm90IGpzb24.c2ln",
    "Bearer !!!.###.$$$",
    "Bearer eyJhbGciOiJFUzM4NCJ9.eyJ.x y",
    "Bearer eyJhbGciOiJFUzM4NCJ9.é.x",
    "Bearer " + "eyJ" + "A" * 20_000 + ".e.x",
    "Bearer\ta.b.c extra",
])
def test_malformed_authorization_headers(issuers_file, header):
    auth = make_auth(issuers_file)
    assert reason(auth, header) in (
        "not-bearer", "malformed-token", "token-too-long", "algorithm-not-allowed", "missing-kid")


def test_header_fields_are_checked(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    assert reason(auth, bearer(sign(ehr_key, "ES384", None, claims()))) == "missing-kid"
    assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(), typ="at+jwt"))) == "bad-typ"
    # PyJWT may refuse an unknown critical extension itself; either way the token is refused.
    critical = sign(ehr_key, "ES384", "ehr-2025-1", claims(), crit=["urn:example:ext"], **{"urn:example:ext": 1})
    assert reason(auth, bearer(critical)) in ("unsupported-crit", "malformed-token")
    assert reason(auth, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(), jku=["x"]))) == "malformed-jku"
    assert reason(auth, bearer(sign(ehr_key, "ES384", "no-such-kid", claims()))) == "unknown-kid"


def test_scheme_is_case_insensitive(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    assert auth.authenticate("bearer " + sign(ehr_key, "ES384", "ehr-2025-1", claims()), AUDIENCE)


def test_exception_text_never_contains_the_token(issuers_file, ehr_key):
    auth = make_auth(issuers_file)
    token = sign(ehr_key, "ES384", "ehr-2025-1", claims(aud="https://wrong.example.org"))
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate(bearer(token), AUDIENCE)
    text = repr(caught.value) + str(caught.value) + str(caught.value.__cause__) + str(caught.value.__context__)
    assert token not in text and token.split(".")[1] not in text and "wrong.example.org" not in text


# ----------------------------------------------------------------------------- modes

def test_missing_header_in_each_mode(issuers_file, ehr_key):
    required, optional, off = (make_auth(issuers_file, mode) for mode in ("required", "optional", "off"))
    for header in (None, "", "   "):
        assert reason(required, header) == "missing-token"
        assert optional.authenticate(header, AUDIENCE) is None
        assert off.authenticate(header, AUDIENCE) is None


def test_optional_mode_still_refuses_a_bad_token_and_accepts_a_good_one(issuers_file, ehr_key):
    optional = make_auth(issuers_file, "optional")
    assert reason(optional, bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims(aud="https://x.org")))) \
        == "wrong-audience"
    assert optional.authenticate(bearer(sign(ehr_key, "ES384", "ehr-2025-1", claims())), AUDIENCE)["iss"] == EHR_ISS


def test_off_mode_ignores_any_header(issuers_file):
    off = make_auth(issuers_file, "off")
    assert off.authenticate("Bearer garbage", AUDIENCE) is None


def test_required_mode_without_any_trusted_issuer_stops_start_up():
    with pytest.raises(SettingsError, match="CDS_TRUSTED_ISSUERS_FILE"):
        ClientAuthenticator(Settings(auth_mode="required", public_base_url=BASE_URL))
    assert ClientAuthenticator(Settings(auth_mode="optional", public_base_url=BASE_URL)).authenticate(
        None, AUDIENCE) is None


def test_required_mode_needs_a_configured_public_base_url(issuers_file, caplog):
    # Otherwise the audience would come from the Host header, which the caller chooses.
    with pytest.raises(SettingsError, match="CDS_PUBLIC_BASE_URL"):
        ClientAuthenticator(Settings(auth_mode="required", trusted_issuers_file=issuers_file))
    ClientAuthenticator(Settings(auth_mode="optional", trusted_issuers_file=issuers_file))
    assert "Host header" in caplog.text
    ClientAuthenticator(Settings(auth_mode="off"))


# ----------------------------------------------------------------------------- the trusted-issuers file

@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"iss": "x"}', "JSON list"),
    ('[{"iss": ""}]', "non-empty"),
    ('[{"iss": "https://a.org"}]', "jku"),
    ('[{"iss": "https://a.org", "jku": ["http://keys.a.org/jwks.json"]}]', "https"),
    ('[{"iss": "https://a.org", "jku": ["https://u:p@keys.a.org/jwks.json"]}]', "user info"),
    ('[{"iss": "https://a.org", "jku": ["https://keys.a.org/j.json"], "jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}}]',
     "only EC and RSA"),
    ('[{"iss": "https://a.org", "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}}]', "no kid"),
    ('[{"iss": "https://a.org", "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "x": "AA", "y": "AA"}]}}]',
     "not a usable key"),
    ('[{"iss": "https://a.org", "jku": ["https://k.a.org/j"]}, {"iss": "https://a.org", "jku": ["https://k.a.org/j"]}]',
     "twice"),
    ('[{"iss": "https://a.org", "jku": ["https://k.a.org/j"], "algs": ["HS256"]}]', "unknown field"),
])
def test_bad_trusted_issuers_files_stop_start_up_naming_the_file(tmp_path, content, message):
    path = tmp_path / "issuers.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message) as caught:
        load_trusted_issuers(path)
    assert str(path) in str(caught.value)


def test_missing_trusted_issuers_file(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        load_trusted_issuers(tmp_path / "absent.json")


def test_loopback_http_jku_is_allowed_for_development(tmp_path):
    path = tmp_path / "issuers.json"
    path.write_text('[{"iss": "http://127.0.0.1:9000", "jku": ["http://127.0.0.1:9000/jwks.json"]}]')
    assert load_trusted_issuers(path)["http://127.0.0.1:9000"].jku == ("http://127.0.0.1:9000/jwks.json",)


# ----------------------------------------------------------------------------- the public sandbox

def test_sandbox_is_trusted_only_when_asked(issuers_file):
    assert SANDBOX_ISSUER not in load_trusted_issuers(issuers_file)
    sandbox = load_trusted_issuers(issuers_file, trust_sandbox=True)[SANDBOX_ISSUER]
    assert sandbox.jku == (SANDBOX_JKU,)
    key = sandbox.keys["44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"]   # the sandbox's published ES384 key
    assert key.fits("ES384") and not key.fits("ES256") and not key.fits("RS384")


def test_sandbox_shaped_token_uses_shipped_key_without_network():
    auth = ClientAuthenticator(Settings(auth_mode="required", trust_sandbox=True, public_base_url=BASE_URL))
    impostor = ec_key(ec.SECP384R1())
    token = sign(impostor, "ES384", "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f", claims(iss=SANDBOX_ISSUER), jku=SANDBOX_JKU)
    with responses.RequestsMock() as mock:
        assert reason(auth, bearer(token)) == "bad-signature"
        assert len(mock.calls) == 0


def test_sandbox_unknown_kid_fetches_only_the_sandbox_jku():
    auth = ClientAuthenticator(Settings(auth_mode="required", trust_sandbox=True, public_base_url=BASE_URL))
    rotated = ec_key(ec.SECP384R1())
    with responses.RequestsMock() as mock:
        mock.get(SANDBOX_JKU, json={"keys": [public_jwk(rotated, "sandbox-2026", "ES384")]})
        token = sign(rotated, "ES384", "sandbox-2026", claims(iss=SANDBOX_ISSUER), jku=SANDBOX_JKU)
        assert auth.authenticate(bearer(token), AUDIENCE)["iss"] == SANDBOX_ISSUER
        assert [c.request.url for c in mock.calls] == [SANDBOX_JKU]
