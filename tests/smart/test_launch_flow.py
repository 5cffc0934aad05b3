"""The SMART launch end to end against the fake EHR: EHR and standalone launch, PKCE, client
authentication, state, consent, expiry, FHIR failures, the allowlist, and what never leaks."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import sqlite3
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from service.policy.loader import DEFAULT_POLICY_DIR
from service.smart.oauth import pkce_challenge
from service.smart.browser_session import COOKIE
from tests.smart.fake_ehr import FakeEhr


def _cookie(client):
    cookie = client.get_cookie(COOKIE, path="/smart")
    return cookie.value if cookie else None


def _app_page(client):
    response = client.get("/smart/app")
    return response, response.get_data(as_text=True)


# ----------------------------------------------------------------------------- EHR launch

def test_ehr_launch_shows_the_checklist_and_chart(ehr, make_app, flow_for):
    app = make_app()
    client = app.test_client()
    flow = flow_for(client, ehr)
    flow.sign_in(iss=ehr.iss, launch="launch-ctx-7")

    asked = ehr.authorize_requests[-1]
    assert asked["scope"] == "launch openid fhirUser patient/*.rs"
    assert asked["launch"] == "launch-ctx-7"
    assert asked["aud"] == ehr.iss
    assert asked["redirect_uri"] == "http://cds.test/smart/callback"
    assert asked["code_challenge_method"] == "S256"
    form, headers = ehr.token_requests[-1]
    # The fake token endpoint accepted the verifier; check the pair here as well.
    assert pkce_challenge(form["code_verifier"]) == asked["code_challenge"]
    assert form["client_id"] == "mecasermin-cds" and "Authorization" not in headers   # public client

    response, page = _app_page(client)
    assert response.status_code == 200
    assert 'data-criterion="diagnosis" data-status="met"' in page
    for criterion in ("height", "igf1", "gh-stimulation", "bone-age"):
        assert f'data-criterion="{criterion}" data-status="met"' in page
    assert "Meets the policy&#39;s criteria" in page
    assert "Observation/h3" in page and "2026-10-20" in page          # evidence with its date
    assert page.count('class="measurement"') == 3                        # three heights plotted
    for curve in ("centile-97", "centile-50", "centile-3", "sd-2-25"):
        assert curve in page
    assert "Tobi Okafor" in page                                        # patient banner
    assert "No mecasermin order was named" in page                      # no appContext: no dose
    premera = hashlib.sha256((DEFAULT_POLICY_DIR / "premera-mecasermin.yaml").read_bytes()).hexdigest()
    assert re.search(r"Policy effective 2023-12-01, applied on the evaluation day \d{4}-\d{2}-\d{2} "
                     rf"\(no order date\) \(file sha256 <code>{premera}</code>\)", page)
    monitoring = re.search(r'<details class="monitoring">.*?</details>', page, re.S).group(0)
    assert page.count('<details class="monitoring">') == 1 and monitoring.count("<li>") >= 5
    assert "Intracranial hypertension" in monitoring
    # Every FHIR request carried the bearer token from the token response.
    fhir_calls = [(m, p, h) for m, p, h in ehr.requests if p.startswith("/fhir/") and "well-known" not in p
                  and not p.startswith("/fhir/metadata")]
    assert fhir_calls and all(h.get("Authorization") == f"Bearer {ehr.access_tokens[-1]}" for _, _, h in fhir_calls)


def test_ehr_launch_reads_the_order_named_in_app_context(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    _, page = _app_page(client)
    assert any(p == "/fhir/MedicationRequest/mr-1" for _, p, _ in ehr.requests)
    assert "MedicationRequest/mr-1" in page and "(named by the EHR&#39;s app context)" in page
    assert "0.8 mg per dose" in page
    assert "within the starting range" in page


def test_order_from_fhir_context_and_from_the_launch_url(ehr, make_app, flow_for):
    ehr.fhir_context = [{"reference": "MedicationRequest/mr-1"}]
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    assert "(named by the EHR&#39;s launch context)" in _app_page(client)[1]

    ehr.fhir_context = None
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc", order="MedicationRequest/mr-1")
    page = _app_page(client)[1]
    assert "(named in the launch URL)" in page and "launch launch" not in page


def test_an_order_that_cannot_be_read_is_reported_and_skipped(ehr, make_app, flow_for):
    ehr.app_context = "MedicationRequest/gone"
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    response, page = _app_page(client)
    assert response.status_code == 200
    assert "the order MedicationRequest/gone could not be read (HTTP 404)" in page
    assert "No dose to check" in page


def test_an_order_for_another_drug_is_not_used(ehr, make_app, flow_for):
    other = {**ehr.orders["mr-1"], "id": "mr-2",
             "medicationCodeableConcept": {"text": "somatropin 5 MG/1.5 ML Cartridge [Norditropin]"}}
    ehr.orders["mr-2"] = other
    ehr.app_context = '{"order": "MedicationRequest/mr-2"}'
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    assert "the order MedicationRequest/mr-2 is not for mecasermin" in _app_page(client)[1]


def _order_by_medication_reference(ehr) -> None:
    """mr-3: the mecasermin order naming its drug only by `Medication/med-increlex` (no display)."""
    order = {key: value for key, value in ehr.orders["mr-1"].items() if key != "medicationCodeableConcept"}
    ehr.orders["mr-3"] = {**order, "id": "mr-3", "medicationReference": {"reference": "Medication/med-increlex"}}
    ehr.app_context = '{"order": "MedicationRequest/mr-3"}'


def test_an_order_naming_its_drug_by_medication_reference_is_read_with_its_medication(ehr, make_app, flow_for):
    _order_by_medication_reference(ehr)
    ehr.medications["med-increlex"] = {
        "resourceType": "Medication", "id": "med-increlex",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "15054-1040-05"}]}}   # NDC alone
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    page = _app_page(client)[1]
    assert "is not for mecasermin" not in page and "No dose to check" not in page
    assert any(path.startswith("/fhir/Medication/med-increlex") for _, path, _ in ehr.requests)


def test_an_order_whose_medication_cannot_be_read_is_not_called_another_drug(ehr, make_app, flow_for):
    _order_by_medication_reference(ehr)          # the EHR answers 404 for Medication/med-increlex
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    page = _app_page(client)[1]
    assert "is not for mecasermin" not in page
    assert ("the order&#39;s medication Medication/med-increlex could not be read, so it cannot be told to be "
            "mecasermin") in page


def test_patient_banner_follows_need_patient_banner(ehr, make_app, flow_for):
    ehr.need_patient_banner = False
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    _, page = _app_page(client)
    assert 'class="patient-banner"' not in page
    assert "Tobi Okafor" in client.get("/smart/packet").get_data(as_text=True)   # the letter still names the patient


def test_chart_for_a_girl_and_no_chart_without_a_usable_sex(ehr, make_app, flow_for):
    ehr.prefetch["patient"] = {**ehr.prefetch["patient"], "gender": "female"}
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    _, page = _app_page(client)
    assert 'data-sex="female"' in page and "Height for age, girls" in page

    ehr.prefetch["patient"] = {**ehr.prefetch["patient"], "gender": "unknown"}
    _, page = _app_page(client)
    assert "<svg" not in page
    assert "does not give the sex as female or male" in page


# ----------------------------------------------------------------------------- standalone and discovery

def test_standalone_launch_with_iss(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss)
    asked = ehr.authorize_requests[-1]
    assert asked["scope"] == "launch/patient openid fhirUser patient/*.rs"
    assert "launch" not in asked
    assert _app_page(client)[0].status_code == 200


def test_standalone_launch_uses_the_configured_default_iss(ehr, make_app, flow_for):
    client = make_app(smart_default_iss=ehr.iss).test_client()
    flow_for(client, ehr).sign_in()
    assert ehr.authorize_requests[-1]["aud"] == ehr.iss


def test_standalone_launch_without_any_iss_asks_for_one(make_app):
    response = make_app().test_client().get("/smart/launch")
    assert response.status_code == 200
    assert 'name="iss"' in response.get_data(as_text=True)


def test_ehr_launch_without_iss_is_refused(make_app):
    response = make_app().test_client().get("/smart/launch?launch=xyz")
    assert response.status_code == 400
    assert "no iss parameter" in response.get_data(as_text=True)


def test_v1_scopes_when_the_server_shows_no_v2(ehr, make_app, flow_for):
    ehr.v2 = False
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    assert ehr.authorize_requests[-1]["scope"] == "launch openid fhirUser patient/*.read"


def test_capability_statement_fallback(ehr, make_app, flow_for):
    ehr.discovery = "metadata"
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    paths = [p for _, p, _ in ehr.requests]
    assert paths.index("/fhir/.well-known/smart-configuration") < paths.index("/fhir/metadata")
    assert ehr.authorize_requests[-1]["scope"] == "launch openid fhirUser patient/*.read"
    assert _app_page(client)[0].status_code == 200


def test_no_discovery_gives_a_clear_page(ehr, make_app):
    ehr.discovery = "none"
    response = make_app().test_client().get(f"/smart/launch?iss={ehr.iss}&launch=abc")
    assert response.status_code == 502
    assert "did not say where to sign in" in response.get_data(as_text=True)


def test_iss_not_on_the_allowlist_gets_no_request(ehr, make_app):
    app = make_app(fhir_allowlist=("http://127.0.0.1:1",))
    response = app.test_client().get(f"/smart/launch?iss={ehr.iss}&launch=abc")
    assert response.status_code == 403
    assert "not one of them" in response.get_data(as_text=True)
    assert ehr.requests == []            # no discovery fetch: no SSRF


@pytest.mark.parametrize("iss", ["http://169.254.169.254/latest", "file:///etc/passwd", "http://127.0.0.1@evil.test/",
                                 "https://ehr.example.org/fhir?x=1"])
def test_iss_forms_the_allowlist_refuses(make_app, iss):
    response = make_app().test_client().get("/smart/launch", query_string={"iss": iss, "launch": "abc"})
    assert response.status_code == 403


def test_discovery_naming_an_endpoint_off_the_allowlist_is_refused(ehr, make_app):
    original = ehr.smart_configuration
    ehr.smart_configuration = lambda: {**original(), "token_endpoint": "http://10.0.0.7/token"}
    ehr.discovery = "well-known"
    response = make_app().test_client().get(f"/smart/launch?iss={ehr.iss}&launch=abc")
    # The document is unusable; the metadata fallback (good endpoints) is used instead.
    assert response.status_code == 302
    assert any(p == "/fhir/metadata" for _, p, _ in ehr.requests)


# ----------------------------------------------------------------------------- client authentication, PKCE

def test_confidential_client_uses_client_secret_basic(make_app, flow_for):
    ehr = FakeEhr(client_secret="s3cr%t:with/odd=chars").start()
    try:
        client = make_app(smart_client_secret="s3cr%t:with/odd=chars").test_client()
        flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
        form, headers = ehr.token_requests[-1]
        assert "client_secret" not in form
        assert headers["Authorization"].startswith("Basic ")
        assert _app_page(client)[0].status_code == 200
    finally:
        ehr.stop()


def test_wrong_client_secret_ends_in_a_clear_page(make_app, flow_for):
    ehr = FakeEhr(client_secret="right").start()
    try:
        client = make_app(smart_client_secret="wrong").test_client()
        flow = flow_for(client, ehr)
        response = flow.callback(flow.authorize(flow.launch(iss=ehr.iss, launch="abc")))
        assert response.status_code == 502
        assert "invalid_client" in response.get_data(as_text=True)
    finally:
        ehr.stop()


def test_the_fake_token_endpoint_checks_the_pkce_verifier(ehr, make_app, flow_for):
    """A code redeemed with a verifier that does not match its challenge is refused, and the app says so."""
    ehr.corrupt_challenge = True
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    response = flow.callback(flow.authorize(flow.launch(iss=ehr.iss, launch="abc")))
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "HTTP 400, error &#39;invalid_grant&#39;" in page
    assert ehr.issued == []
    assert _app_page(client)[0].status_code == 401


def test_each_launch_has_its_own_verifier_and_state(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    flow.authorize(flow.launch(iss=ehr.iss, launch="a"))
    flow.authorize(flow.launch(iss=ehr.iss, launch="b"))
    first, second = ehr.authorize_requests[-2:]
    assert first["state"] != second["state"] and first["code_challenge"] != second["code_challenge"]


# ----------------------------------------------------------------------------- state, consent, expiry

def test_bad_state_is_refused_and_the_real_answer_still_works(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    forged = re.sub(r"state=[^&]+", "state=forged-state", back)
    response = flow.callback(forged)
    assert response.status_code == 400
    assert "does not belong to the sign-in this browser started" in response.get_data(as_text=True)
    assert ehr.token_requests == []                       # the code was not redeemed
    assert flow.callback(back).status_code == 303


def test_missing_state_is_refused(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    without = re.sub(r"&?state=[^&]+", "", back)
    assert flow.callback(without).status_code == 400


def test_callback_without_the_cookie_says_the_cookie_was_not_sent(ehr, make_app, flow_for):
    app = make_app()
    flow = flow_for(app.test_client(), ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    response = flow_for(app.test_client(), ehr).callback(back)      # another browser, or a withheld cookie
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "did not send the app&#39;s sign-in cookie" in page and "expired" not in page
    assert "SameSite=None; Secure; Partitioned" in page
    assert ehr.token_requests == []


def test_callback_with_a_stale_cookie_is_an_expired_sign_in(ehr, make_app, flow_for):
    app = make_app()
    client = app.test_client()
    flow = flow_for(client, ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    client.set_cookie(COOKIE, "x" * 43, path="/smart")               # a cookie that names no pending sign-in
    response = flow.callback(back)
    assert response.status_code == 401
    assert "This sign-in has expired" in response.get_data(as_text=True)


def test_launch_on_another_host_than_the_public_base_url_gets_a_clear_page(ehr, make_app, flow_for):
    app = make_app(public_base_url="http://cds.public.test")
    launcher = app.test_client()
    flow = flow_for(launcher, ehr)
    launched = launcher.get(f"/smart/launch?iss={ehr.iss}&launch=abc", base_url="http://cds.internal:8080")
    back = flow.authorize(launched)
    assert back.startswith("http://cds.public.test/smart/callback?")
    parts = urlsplit(back)
    # The browser follows the redirect to the public host, where the launch's cookie was never set.
    response = app.test_client().get(f"{parts.path}?{parts.query}", base_url="http://cds.public.test")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The app was opened at another address" in page
    assert "http://cds.internal:8080" in page and "http://cds.public.test" in page and "expired" not in page
    assert ehr.token_requests == []


def test_denied_consent(ehr, make_app, flow_for):
    ehr.authorize_mode = "deny"
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    response = flow.callback(flow.authorize(flow.launch(iss=ehr.iss, launch="abc")))
    assert response.status_code == 403
    assert "Access was not granted" in response.get_data(as_text=True)
    assert ehr.token_requests == []
    assert _app_page(client)[0].status_code == 401


def test_other_oauth_errors_are_named(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    state = parse_qs(urlsplit(back).query)["state"][0]
    response = client.get("/smart/callback", query_string={
        "error": "invalid_scope", "state": state, "error_description": "<script>alert(1)</script>"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "invalid_scope" in page and "<script>" not in page


def test_pending_sign_in_expires(ehr, make_app, flow_for):
    app = make_app(smart_launch_timeout=60)
    client = app.test_client()
    flow = flow_for(client, ehr)
    back = flow.authorize(flow.launch(iss=ehr.iss, launch="abc"))
    app.extensions["mecasermin_smart"].sessions.clock = lambda: time.time() + 61
    response = flow.callback(back)
    assert response.status_code == 401
    assert ehr.token_requests == []


def test_session_expires_after_its_lifetime(ehr, make_app, flow_for):
    app = make_app(smart_session_lifetime=600)
    client = app.test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    assert _app_page(client)[0].status_code == 200
    app.extensions["mecasermin_smart"].sessions.clock = lambda: time.time() + 601
    response, page = _app_page(client)
    assert response.status_code == 401
    assert "Your session has ended" in page
    assert "WWW-Authenticate" in response.headers
    assert client.get("/smart/packet").status_code == 401
    assert client.get("/smart/packet.json").status_code == 401


def test_session_never_outlives_the_access_token(ehr, make_app, flow_for):
    ehr.expires_in = 120
    app = make_app(smart_session_lifetime=3600)
    client = app.test_client()
    response = flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    assert "Max-Age=120" in response.headers["Set-Cookie"]
    app.extensions["mecasermin_smart"].sessions.clock = lambda: time.time() + 121
    assert _app_page(client)[0].status_code == 401


def test_a_guessed_or_malformed_cookie_is_no_session(make_app):
    client = make_app().test_client()
    client.set_cookie(COOKIE, "A" * 43, path="/smart")
    assert client.get("/smart/app").status_code == 401
    client.set_cookie(COOKIE, "../../etc/passwd", path="/smart")
    assert client.get("/smart/app").status_code == 401


def test_sign_out_ends_the_session(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    page = _app_page(client)[1]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/smart/sign-out", data={"csrf": "wrong"}).status_code == 400
    assert client.post("/smart/sign-out", data={"csrf": csrf}).status_code == 200
    assert _app_page(client)[0].status_code == 401


# ----------------------------------------------------------------------------- FHIR failures

@pytest.mark.parametrize("status", [500, 401, 503])
def test_fhir_error_page(ehr, make_app, flow_for, status):
    client = make_app(fhir_retries=0).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    ehr.fhir_status = status
    response, page = _app_page(client)
    assert response.status_code == 502
    assert "The EHR&#39;s FHIR server did not answer" in page
    assert f"HTTP {status}" in page


def test_fhir_server_that_is_down(make_app, flow_for):
    ehr = FakeEhr().start()
    client = make_app(fhir_retries=0).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    ehr.stop()
    response, page = _app_page(client)
    assert response.status_code == 502
    assert "connection failed" in page


def test_a_search_that_fails_leaves_criteria_unknown_not_an_error(ehr, make_app, flow_for):
    client = make_app(fhir_retries=0).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    ehr.prefetch["observations"] = {"resourceType": "OperationOutcome",
                                    "issue": [{"severity": "error", "code": "exception"}]}
    response, page = _app_page(client)
    assert response.status_code == 200
    assert "Part of the record could not be read from the EHR" in page
    assert 'data-criterion="igf1" data-status="unknown"' in page


# ----------------------------------------------------------------------------- secrets stay secret

def test_no_token_in_cookies_logs_pages_or_the_database(ehr, make_app, flow_for, capsys, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app = make_app(smart_client_secret="", log_level="DEBUG")
    client = app.test_client()
    flow = flow_for(client, ehr)
    launch = flow.launch(iss=ehr.iss, launch="abc")
    back = flow.authorize(launch)
    signed_in = flow.callback(back)
    responses = [launch, signed_in, client.get("/smart/app"), client.get("/smart/packet"),
                 client.get("/smart/packet.json")]
    secrets_seen = ehr.secrets_seen()
    assert len(secrets_seen) == 5       # access, id and refresh token, code, verifier

    set_cookies = [h for r in responses for h in r.headers.getlist("Set-Cookie")]
    assert set_cookies and all(h.startswith(f"{COOKIE}=") for h in set_cookies)
    for header in set_cookies:
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/smart" in header
        assert not any(secret in header for secret in secrets_seen)
    value = _cookie(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)

    logs = capsys.readouterr().err + "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "SMART sign-in complete" in logs
    for secret in secrets_seen + [ehr.prefetch["patient"]["id"] + '"', "Okafor"]:
        assert secret not in logs
    for response in responses:
        body = response.get_data(as_text=True)
        assert not any(secret in body for secret in secrets_seen)
        assert response.headers["Cache-Control"] == "no-store"

    raw = b""
    for path in tmp_path.glob("smart.sqlite3*"):
        raw += path.read_bytes()
    assert raw and not any(secret.encode() in raw for secret in secrets_seen)
    with sqlite3.connect(tmp_path / "smart.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM smart_session").fetchone()[0] >= 1


def test_the_session_cookie_is_secure_behind_https(ehr, make_app):
    app = make_app(public_base_url="https://cds.example.org")
    response = app.test_client().get(f"/smart/launch?iss={ehr.iss}&launch=abc")
    assert "; Secure" in response.headers["Set-Cookie"]
    assert parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"] == [
        "https://cds.example.org/smart/callback"]


def test_the_configured_redirect_url_wins(ehr, make_app):
    app = make_app(smart_redirect_url="https://apps.example.org/mecasermin/smart/callback")
    response = app.test_client().get(f"/smart/launch?iss={ehr.iss}&launch=abc")
    assert parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"] == [
        "https://apps.example.org/mecasermin/smart/callback"]


def test_basic_header_is_form_encoded(make_app, flow_for):
    """RFC 6749 §2.3.1: the id and secret are form-encoded before base64."""
    ehr = FakeEhr(client_id="app:1", client_secret="p@ss word").start()
    try:
        client = make_app(smart_client_id="app:1", smart_client_secret="p@ss word").test_client()
        flow = flow_for(client, ehr)
        flow.callback(flow.authorize(flow.launch(iss=ehr.iss, launch="abc")))
        _, headers = ehr.token_requests[-1]
        decoded = base64.b64decode(headers["Authorization"][6:]).decode()
        assert decoded == "app%3A1:p%40ss%20word"
    finally:
        ehr.stop()
