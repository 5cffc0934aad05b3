"""Pure parts of the SMART app: PKCE, scopes, token responses, discovery documents, the chart,
the session store."""
from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from service.record.growth import height_sds, lms_at
from service.smart.chart import Z_P3, Limit, Point, growth_chart, height_at
from service.smart.discovery import (SmartConfiguration, endpoint_allowed, parse_capability_statement,
                                     parse_smart_configuration)
from service.smart.oauth import (OAuthError, authorize_url, can_create, can_write_documents, order_reference,
                                 parse_token_response, pkce_challenge, pkce_pair, requested_scopes)
from service.smart.sessions import SmartSessions
from service.storage import Database

ALLOW = ("http://127.0.0.1:*",)
ISS = "https://ehr.test/fhir/r4"
SVG = "{http://www.w3.org/2000/svg}"


# ----------------------------------------------------------------------------- PKCE and scopes

def test_pkce_matches_rfc_7636_appendix_b():
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_pair_is_random_and_well_formed():
    (v1, c1), (v2, c2) = pkce_pair(), pkce_pair()
    assert v1 != v2 and c1 != c2
    assert 43 <= len(v1) <= 128 and set(v1) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert pkce_challenge(v1) == c1 and len(c1) == 43


def _config(**kwargs):
    return SmartConfiguration("https://ehr.test/authorize", "https://ehr.test/token", "smart-configuration", **kwargs)


@pytest.mark.parametrize("kwargs, v2", [
    ({"capabilities": ("permission-v2",)}, True),
    ({"scopes_supported": ("openid", "patient/*.rs")}, True),
    ({"scopes_supported": ("patient/Observation.cruds",)}, True),
    ({"scopes_supported": ("openid", "patient/*.read", "patient/*.write")}, False),
    ({"capabilities": ("permission-v1",)}, False),
    ({}, False),
])
def test_v2_detection(kwargs, v2):
    assert _config(**kwargs).supports_v2_scopes is v2


def test_requested_scopes():
    v2, v1 = _config(capabilities=("permission-v2",)), _config()
    assert requested_scopes(v2, standalone=False, write=False) == "launch openid fhirUser patient/*.rs"
    assert requested_scopes(v2, standalone=True, write=True) == \
        "launch/patient openid fhirUser patient/*.rs patient/DocumentReference.c patient/QuestionnaireResponse.c"
    assert requested_scopes(v1, standalone=False, write=True) == \
        "launch openid fhirUser patient/*.read patient/DocumentReference.write patient/QuestionnaireResponse.write"


@pytest.mark.parametrize("scope, allowed", [
    ("patient/DocumentReference.c", True),
    ("patient/DocumentReference.cruds", True),
    ("patient/*.cud", True),
    ("user/DocumentReference.c", True),
    ("patient/*.write", True),
    ("patient/DocumentReference.write", True),
    ("patient/*.*", True),
    ("patient/*.rs", False),
    ("patient/*.read", False),
    ("patient/Observation.c", False),
    ("system/DocumentReference.c", False),
    ("patient/DocumentReference.rc", False),   # v2 letters must be in cruds order
    ("launch openid fhirUser patient/*.rs", False),
    ("", False),
])
def test_can_write_documents(scope, allowed):
    assert can_write_documents(f"openid {scope}") is allowed


@pytest.mark.parametrize("scope, allowed", [
    ("patient/QuestionnaireResponse.c", True), ("patient/QuestionnaireResponse.write", True),
    ("patient/*.cruds", True), ("patient/DocumentReference.c", False), ("patient/QuestionnaireResponse.rs", False),
])
def test_can_create_questionnaire_responses(scope, allowed):
    assert can_create(f"openid {scope}", "QuestionnaireResponse") is allowed


def test_authorize_url_keeps_existing_query_and_encodes_scope():
    config = SmartConfiguration("https://ehr.test/oauth2/authorize?tenant=7", "https://ehr.test/token", "x")
    url = authorize_url(config, client_id="c", redirect_uri="https://cds.test/smart/callback", scope="launch patient/*.rs",
                        state="s", code_challenge="ch", aud="https://ehr.test/fhir", launch="L1")
    assert url.startswith("https://ehr.test/oauth2/authorize?tenant=7&response_type=code&")
    assert "scope=launch%20patient%2F%2A.rs" in url and "launch=L1" in url and "code_challenge_method=S256" in url


# ----------------------------------------------------------------------------- token response

def _token(**extra):
    return {"access_token": "at", "token_type": "bearer", "patient": "p1", "scope": "launch patient/*.rs",
            "expires_in": 300, **extra}


def test_token_response_parsed():
    token = parse_token_response(_token(access_token="tok-9f8e7d", appContext="order=MedicationRequest/x",
                                        need_patient_banner=False), "asked")
    assert token.patient == "p1" and token.expires_in == 300 and not token.need_patient_banner
    assert token.app_context == "order=MedicationRequest/x"
    assert token.access_token == "tok-9f8e7d" and "tok-9f8e7d" not in repr(token)


def test_omitted_scope_means_the_requested_one():
    body = _token()
    del body["scope"]
    assert parse_token_response(body, "launch patient/*.rs").scope == "launch patient/*.rs"


@pytest.mark.parametrize("change, reason", [
    ({"access_token": ""}, "no access_token"),
    ({"token_type": "mac"}, "not Bearer"),
    ({"patient": None}, "no patient"),
    ({"patient": "../Patient/x"}, "no patient"),
    ({"scope": 7}, "scope"),
])
def test_token_response_refused(change, reason):
    with pytest.raises(OAuthError, match=reason):
        parse_token_response(_token(**change), "asked")


def test_token_response_must_be_an_object():
    with pytest.raises(OAuthError):
        parse_token_response(["at"], "asked")


@pytest.mark.parametrize("app_context, fhir_context, param, expected", [
    ("order=MedicationRequest/abc", (), None, ("MedicationRequest/abc", "appContext")),
    ("MedicationRequest/abc", (), None, ("MedicationRequest/abc", "appContext")),
    ('{"order": "MedicationRequest/abc"}', (), None, ("MedicationRequest/abc", "appContext")),
    ("order=MedicationRequest/abc&hook=order-sign", (), None, ("MedicationRequest/abc", "appContext")),
    (None, ({"reference": "MedicationRequest/f1"},), None, ("MedicationRequest/f1", "fhirContext")),
    (None, ({"reference": "Encounter/e1"},), "MedicationRequest/q1", ("MedicationRequest/q1", "launch URL")),
    ("order=Patient/p1", (), None, (None, None)),
    ("order=MedicationRequest/../../x", (), None, (None, None)),
    ("{not json", (), None, (None, None)),
    (None, (), None, (None, None)),
])
def test_order_reference(app_context, fhir_context, param, expected):
    assert order_reference(app_context, fhir_context, param) == expected


# ----------------------------------------------------------------------------- discovery documents

def test_endpoint_allowed():
    assert endpoint_allowed("https://auth.ehr.example.org/oauth2/token", ALLOW)
    assert endpoint_allowed("http://127.0.0.1:9000/token?tenant=1", ALLOW)
    assert not endpoint_allowed("http://auth.ehr.example.org/token", ALLOW)          # plain http, not allowlisted
    assert not endpoint_allowed("https://user@ehr.example.org/token", ALLOW)
    assert not endpoint_allowed("javascript:alert(1)", ALLOW)
    assert not endpoint_allowed("https://ehr.example.org/token#x", ALLOW)
    assert not endpoint_allowed(None, ALLOW)


def test_smart_configuration_parsed():
    config = parse_smart_configuration({
        "authorization_endpoint": "https://ehr.test/authorize", "token_endpoint": "https://ehr.test/token",
        "capabilities": ["launch-ehr", "permission-v2"], "scopes_supported": ["patient/*.rs", 3]}, ALLOW, iss=ISS)
    assert config.supports_v2_scopes and config.scopes_supported == ("patient/*.rs",)
    assert parse_smart_configuration({"authorization_endpoint": "https://ehr.test/authorize"}, ALLOW, iss=ISS) is None
    assert parse_smart_configuration([], ALLOW, iss=ISS) is None


def test_capability_statement_parsed():
    statement = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "security": {"extension": [{
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [{"url": "authorize", "valueUri": "https://ehr.test/a"},
                      {"url": "token", "valueUri": "https://ehr.test/t"}]}]}}]}
    config = parse_capability_statement(statement, ALLOW, iss=ISS)
    assert config.token_endpoint == "https://ehr.test/t" and not config.supports_v2_scopes
    assert parse_capability_statement({"resourceType": "Patient"}, ALLOW, iss=ISS) is None


# ----------------------------------------------------------------------------- chart

def test_height_at_inverts_the_lms_z_score():
    # Spec cross-check: a 6.0-year-old boy at 100.0 cm has SDS about -3.02.
    assert height_at("male", 6.0, -3.02) == pytest.approx(100.0, abs=0.1)
    for sex in ("male", "female"):
        for age in (2.0, 5.25, 9.9, 14.0, 19.5):
            for z in (Z_P3, 0.0, -2.25, 1.5):
                sds, _, _ = height_sds(height_at(sex, age, z), sex, age)
                assert sds == pytest.approx(z, abs=0.006)
    assert height_at("male", 6.0, 0.0) == pytest.approx(lms_at("male", 72.0)[1])   # 50th centile = M
    assert height_at("male", 1.5, 0.0) is None and height_at("female", 21.0, 0.0) is None


def test_chart_draws_curves_threshold_and_points():
    points = [Point(5.42, 96.1, date(2025, 10, 15), -3.1, 0.1), Point(5.93, 98.2, date(2026, 4, 18)),
              Point(6.43, 100.4, date(2026, 10, 20), -3.42, 0.03), Point(1.5, 80.0, date(2021, 11, 1))]
    svg = growth_chart("male", points, age_now=6.52, limit=Limit(-2.25, "policy limit (\u22122.25 SD)"))
    root = ET.fromstring(str(svg))
    paths = {p.get("class"): p for p in root.iter(f"{SVG}path")}
    assert set(paths) == {"centile centile-97", "centile centile-50", "centile centile-3", "threshold sd-2-25"}
    assert paths["threshold sd-2-25"].get("stroke-dasharray")
    circles = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "measurement"]
    assert [c.get("data-height-cm") for c in circles] == ["96.1", "98.2", "100.4"]    # under-2 point left out
    # The child sits below the -2.25 SD line: larger y is lower on screen.
    y_threshold_at = _curve_y_at(paths["threshold sd-2-25"], float(circles[-1].get("cx")))
    assert float(circles[-1].get("cy")) > y_threshold_at
    assert "SDS \u22123.42" not in svg and "SDS -3.42" in svg      # the tooltip keeps the value
    assert 'style=' not in svg                                   # CSP: no inline styles


def _curve_y_at(path, x: float) -> float:
    coords = [tuple(map(float, part.lstrip("ML").split(","))) for part in path.get("d").split(" ")]
    return min(coords, key=lambda c: abs(c[0] - x))[1]


def test_chart_for_a_girl_and_without_points():
    svg = growth_chart("female", [], age_now=None)
    root = ET.fromstring(str(svg))
    assert root.get("data-sex") == "female"
    assert not [c for c in root.iter(f"{SVG}circle") if c.get("class") == "measurement"]
    assert growth_chart(None, [Point(6.0, 100.0, None)]) is None
    assert growth_chart("other", [Point(6.0, 100.0, None)]) is None


# ----------------------------------------------------------------------------- sessions

def _database(path):
    database = Database(f"sqlite:///{path}")
    database.migrate()
    return database


def test_sessions_round_trip_expire_and_are_encrypted_at_rest(tmp_path):
    now = [1000.0]
    store = SmartSessions(_database(tmp_path / "s.db"), clock=lambda: now[0])
    session_id = store.create({"access_token": "at-very-secret", "patient": "p-42"}, lifetime=60)
    data, expires = store.load(session_id)
    assert data == {"access_token": "at-very-secret", "patient": "p-42"} and expires == 1060.0
    raw = (tmp_path / "s.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    assert b"at-very-secret" not in raw and b"p-42" not in raw and session_id.encode() not in raw
    assert store.load(session_id[:-1] + ("A" if session_id[-1] != "A" else "B")) is None
    now[0] = 1060.0
    assert store.load(session_id) is None
    store.create({"x": 1}, lifetime=10)          # a write purges expired rows
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT COUNT(*) FROM smart_session").fetchone()[0] == 1


def test_session_rows_cannot_be_swapped(tmp_path):
    store = SmartSessions(_database(tmp_path / "s.db"))
    a = store.create({"who": "a"}, 60)
    b = store.create({"who": "b"}, 60)
    with sqlite3.connect(tmp_path / "s.db") as db:
        rows = db.execute("SELECT id_hash, nonce, payload FROM smart_session ORDER BY rowid").fetchall()
        db.execute("UPDATE smart_session SET nonce = ?, payload = ? WHERE id_hash = ?", (rows[1][1], rows[1][2], rows[0][0]))
    assert store.load(a) is None and store.load(b)[0] == {"who": "b"}
    store.delete(b)
    assert store.load(b) is None
