"""The HTTP edge: client authentication, request limits and the log context, wired in the app."""
from __future__ import annotations

import io
import json
import logging
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.logs import JsonFormatter
from tests.fixtures import fhir_bundle, height_observation, order_select_request
from tests.security.conftest import SELECT, SIGN, assert_error_body, response_problems
from tests.security.jwt_helpers import EHR_ISS, claims, ec_key, public_jwk, sign

BASE_URL = "https://cds.example-health.org"


@pytest.fixture(scope="module")
def ehr_key():
    return ec_key(ec.SECP384R1())


@pytest.fixture
def secured(make_app, tmp_path, ehr_key):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(ehr_key, "ehr-1", "ES384")]}}]))
    app = make_app(auth_mode="required", audit_hash_key="k-test-0123456789", trusted_issuers_file=str(issuers), public_base_url=BASE_URL,
                   fhir_allowlist=("https://fhir.example-health.org/r4",),
                   log_level="WARNING")
    return app.test_client()


def token(key, path=SELECT, **overrides) -> str:
    return "Bearer " + sign(key, "ES384", "ehr-1", claims(**{"aud": BASE_URL + path, **overrides}))


# ----------------------------------------------------------------------------- authentication

UNAUTHORIZED = {"error": "unauthorized", "message": "Authentication failed."}


def test_valid_client_jwt_is_accepted(secured, ehr_key):
    response = secured.post(SELECT, json=order_select_request(), headers={"Authorization": token(ehr_key)})
    assert response.status_code == 200 and response_problems(response.get_json()) == []
    feedback = {"feedback": [{"card": response.get_json()["cards"][0]["uuid"], "outcome": "accepted",
                              "outcomeTimestamp": "2026-11-21T10:15:00Z"}]}
    response = secured.post(SELECT + "/feedback", json=feedback,
                            headers={"Authorization": token(ehr_key, SELECT + "/feedback")})
    assert response.status_code == 200 and response.get_json() == {"stored": 1}


@pytest.mark.parametrize("case", ["missing", "garbage", "wrong-aud", "other-service", "expired", "forged", "hs256"])
def test_every_auth_failure_is_the_same_bare_401(secured, ehr_key, case):
    now = int(time.time())
    headers = {
        "missing": {},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "wrong-aud": {"Authorization": token(ehr_key, aud="https://evil.example.org" + SELECT)},
        "other-service": {"Authorization": token(ehr_key, SIGN)},       # a token for order-sign
        "expired": {"Authorization": token(ehr_key, iat=now - 900, exp=now - 600)},
        "forged": {"Authorization": token(ec_key(ec.SECP384R1()))},
        "hs256": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVoci0xIn0."
                                   "eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlLWhlYWx0aC5vcmcifQ.c2lnbmF0dXJl"},
    }[case]
    response = secured.post(SELECT, json=order_select_request(), headers=headers)
    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_replayed_token_is_refused(secured, ehr_key):
    header = {"Authorization": token(ehr_key)}
    assert secured.post(SELECT, json=order_select_request(), headers=header).status_code == 200
    assert secured.post(SELECT, json=order_select_request(), headers=header).status_code == 401


def test_authentication_comes_before_the_body_is_read(secured):
    for data in (b"{not json", b"[" * 100_000, b"x" * 1000):
        response = secured.post(SELECT, data=data, content_type="application/json")
        assert response.status_code == 401 and response.get_json() == UNAUTHORIZED
    assert secured.post(SELECT + "/feedback", data=b"{", content_type="application/json").status_code == 401


def test_discovery_and_health_stay_open(secured):
    assert secured.get("/cds-services").status_code == 200
    assert secured.get("/healthz").status_code == 200


def test_auth_failure_is_logged_by_reason_without_the_token(secured, ehr_key, caplog):
    bad = token(ehr_key, aud="https://evil.example.org/x")
    with caplog.at_level(logging.INFO):
        secured.post(SELECT, json=order_select_request(), headers={"Authorization": bad})
    reasons = [r.reason for r in caplog.records if getattr(r, "reason", None)]
    assert reasons == ["wrong-audience"]
    raw = caplog.text + "".join(json.dumps(vars(r), default=str) for r in caplog.records)
    assert bad.split()[1] not in raw and bad.split(".")[1] not in raw


# ----------------------------------------------------------------------------- limits

@pytest.fixture
def client(make_app):
    return make_app(log_level="WARNING", max_body_bytes=200_000, max_json_depth=40, max_resources=50).test_client()


def test_body_over_the_size_limit_is_413(client):
    body = order_select_request()
    body["prefetch"]["observations"]["entry"][0]["resource"]["note"] = [{"text": "x" * 300_000}]
    response = client.post(SELECT, json=body)
    assert response.status_code == 413
    assert assert_error_body(response)["error"] == "payload-too-large"


def test_body_over_the_limit_without_content_length_is_413(client):
    # As gunicorn passes a chunked request: no CONTENT_LENGTH, wsgi.input_terminated set.
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    for size, status in ((300_000, 413), (200_000 - 40, 400)):
        payload = json.dumps({"hook": "order-select", "padding": "x" * size}).encode()
        environ = EnvironBuilder(path=SELECT, method="POST", input_stream=io.BytesIO(payload),
                                 content_type="application/json").get_environ()
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
        body, response_status, _ = run_wsgi_app(client.application, environ, buffered=True)
        assert int(response_status.split()[0]) == status, b"".join(body)[:200]
        assert json.loads(b"".join(body))["error"] in ("payload-too-large", "invalid-request")


def test_nesting_deeper_than_the_limit_is_400(client):
    body = order_select_request()
    deep: dict = {"url": "http://example.org/ext", "valueString": "leaf"}
    for _ in range(45):
        deep = {"url": "http://example.org/ext", "extension": [deep]}
    body["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = [deep]
    response = client.post(SELECT, json=body)
    assert response.status_code == 400 and assert_error_body(response)["error"] == "too-deep"


def test_depth_check_is_not_fooled_by_brackets_in_strings(client):
    body = order_select_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = [{"text": "[" * 5000 + '{"\\"' * 100}]
    response = client.post(SELECT, json=body)
    assert response.status_code == 200, response.data[:300]


@pytest.mark.parametrize("payload", [
    b"[" * 150_000 + b"]" * 150_000,
    b'{"a":' * 100_000,
    b'"' + b'\\"' * 90_000,                 # quadratic for a naive string-skipping regex
    b'{"s": "' + b'\\\\' * 90_000 + b'"}',
])
def test_hostile_json_is_answered_fast_and_without_5xx(client, payload):
    started = time.perf_counter()
    response = client.post(SELECT, data=payload, content_type="application/json")
    assert time.perf_counter() - started < 2.0
    assert response.status_code in (400, 413)
    assert_error_body(response)


def test_too_many_resources_is_413(client):
    body = order_select_request()
    body["prefetch"]["observations"] = fhir_bundle(
        [height_observation(f"h{i}", "2026-01-01", 100.0 + i / 10) for i in range(60)])
    response = client.post(SELECT, json=body)
    assert response.status_code == 413 and assert_error_body(response)["error"] == "too-many-resources"


def test_default_resource_limit(make_app):
    client = make_app(log_level="WARNING").test_client()
    body = order_select_request(prefetch=None)
    tiny = [{"resourceType": "Basic", "id": f"b{i}", "code": {"text": "x"}} for i in range(5001)]
    body["prefetch"] = {"observations": {"resourceType": "Bundle", "type": "searchset",
                                         "entry": [{"resource": r} for r in tiny]}}
    response = client.post(SELECT, json=body)
    assert response.status_code == 413 and assert_error_body(response)["error"] == "too-many-resources"


@pytest.mark.parametrize("data, content_type, status", [
    (b'{"hook": NaN}', "application/json", 400),
    (b'{"hook": Infinity}', "application/json", 400),
    (b"\xff\xfe{}", "application/json", 400),
    (b"{}", "text/plain", 415),
    (b"hook=order-select", "application/x-www-form-urlencoded", 415),
    (b"", "application/json", 400),
    (b"null", "application/json", 400),
    (b"[]", "application/json", 400),
    (b'{"hook": "order-select", "hook": "order-sign"}', "application/json", 400),
])
def test_malformed_bodies(client, data, content_type, status):
    response = client.post(SELECT, data=data, content_type=content_type)
    assert response.status_code == status
    assert_error_body(response)


def test_unknown_service_and_method(client):
    assert client.post("/cds-services/other", json=order_select_request()).status_code == 404
    assert client.get(SELECT).status_code == 405
    assert_error_body(client.delete(SELECT))


# ----------------------------------------------------------------------------- log context

def test_log_lines_carry_request_id_and_hook_instance(make_app):
    app = make_app(log_level="INFO")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        body = order_select_request()
        response = app.test_client().post(SELECT, json=body, headers={"X-Request-ID": "ehr-req-0042"})
        hostile = app.test_client().get("/healthz", headers={"X-Request-ID": "x;Set-Cookie: a=b" + "y" * 80})
    finally:
        logging.getLogger().removeHandler(handler)
    assert response.headers["X-Request-ID"] == "ehr-req-0042"
    assert "\n" not in hostile.headers["X-Request-ID"] and len(hostile.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line.get("path") == SELECT]
    assert access and access[0]["request_id"] == "ehr-req-0042"
    assert access[0]["hook_instance"] == body["hookInstance"] and access[0]["status"] == 200
    assert all(line.get("request_id") != "ehr-req-0042" for line in lines if line.get("path") == "/healthz")
