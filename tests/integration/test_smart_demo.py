"""`make smart-demo`: the SMART app launched from the demo EHR, with the demo FHIR server's own
authorization server (`server.mjs --smart`), as real processes on loopback.

The protocol checks go over HTTP (discovery, PKCE, single-use codes, tokens on every FHIR
request, the patient compartment); the browser tests drive Debian's Chromium through Playwright
through an EHR launch and a standalone launch to the app's page.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
from contextlib import ExitStack
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from service.smart.oauth import pkce_pair
from tests.integration.conftest import ROOT, ensure_installed
from tests.smart.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("mecasermin_smart_demo", ROOT / "sandbox-config" / "smart_demo.py")
smart_demo = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("mecasermin_smart_demo", smart_demo)
_spec.loader.exec_module(smart_demo)

PATIENT = "demo-laron-icd10"
PRACTITIONER = "demo-pediatric-endocrinologist"


@pytest.fixture(scope="module")
def running():
    ensure_installed()
    with ExitStack() as stack:
        yield smart_demo.start(stack, date.today())


# ----------------------------------------------------------------------------- the protocol over HTTP

class Client:
    """The app's part of the flow, done by hand, so each check can be bent."""

    def __init__(self, running):
        self.running = running
        self.origin = running.fhir_base.removesuffix("/fhir")
        self.redirect_uri = f"{running.service_base}/smart/callback"
        self.verifier, self.challenge = pkce_pair()

    def authorize(self, **overrides) -> requests.Response:
        params = {"response_type": "code", "client_id": smart_demo.CLIENT_ID, "redirect_uri": self.redirect_uri,
                  "scope": "launch/patient openid fhirUser patient/*.rs", "state": "s-1",
                  "aud": self.running.fhir_base, "code_challenge": self.challenge, "code_challenge_method": "S256",
                  **overrides}
        return requests.get(f"{self.origin}/auth/authorize", params={k: v for k, v in params.items() if v is not None},
                            allow_redirects=False, timeout=10)

    def approve(self, sign_in: requests.Response, patient: str | None = PATIENT, decision: str = "approve") -> str:
        assert sign_in.status_code == 200, sign_in.text
        request_id = re.search(r'name="request" value="([^"]+)"', sign_in.text).group(1)
        form = {"request": request_id, "practitioner": PRACTITIONER, "decision": decision}
        if patient:
            form["patient"] = patient
        answer = requests.post(f"{self.origin}/auth/authorize", data=form, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def code(self, **overrides) -> str:
        back = self.approve(self.authorize(**overrides))
        query = parse_qs(urlsplit(back).query)
        assert back.startswith(self.redirect_uri) and query["state"] == ["s-1"]
        return query["code"][0]

    def token(self, code: str, verifier: str | None = None) -> requests.Response:
        return requests.post(f"{self.origin}/auth/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "client_id": smart_demo.CLIENT_ID, "code_verifier": verifier or self.verifier})


def test_discovery_names_the_endpoints_and_pkce(running):
    config = requests.get(f"{running.fhir_base}/.well-known/smart-configuration", timeout=10).json()
    origin = running.fhir_base.removesuffix("/fhir")
    assert config["authorization_endpoint"] == f"{origin}/auth/authorize"
    assert config["token_endpoint"] == f"{origin}/auth/token"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "permission-v2"} <= set(config["capabilities"])
    security = requests.get(f"{running.fhir_base}/metadata", timeout=10).json()["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"authorize": config["authorization_endpoint"], "token": config["token_endpoint"]}


def test_fhir_requests_need_a_token_for_the_patient_in_context(running):
    assert requests.get(f"{running.fhir_base}/Patient/{PATIENT}", timeout=10).status_code == 401
    bogus = requests.get(f"{running.fhir_base}/Patient/{PATIENT}", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bogus.status_code == 401 and bogus.headers["WWW-Authenticate"].startswith("Bearer")
    client = Client(running)
    answer = client.token(client.code())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["patient"] == PATIENT and body["expires_in"] == 3600
    assert body["scope"] == "launch/patient openid fhirUser patient/*.rs"
    header, claims, _ = body["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert claims["fhirUser"] == f"{running.fhir_base}/Practitioner/{PRACTITIONER}" and claims["aud"] == smart_demo.CLIENT_ID
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    get = lambda path: requests.get(f"{running.fhir_base}/{path}", headers=auth, timeout=10)  # noqa: E731
    assert get(f"Patient/{PATIENT}").json()["id"] == PATIENT
    assert get(f"Observation?patient={PATIENT}&code=8302-2").json()["total"] > 0
    assert get(f"Practitioner/{PRACTITIONER}").status_code == 200
    assert get("Patient/demo-turner").status_code == 403               # another patient
    assert get("Observation?patient=demo-turner").status_code == 403
    assert get("Observation?code=8302-2").status_code == 403           # not limited to the patient
    assert get(f"MedicationRequest/{'demo-turner-mecasermin-draft'}").status_code == 403
    write = requests.post(f"{running.fhir_base}/DocumentReference", headers=auth, timeout=10, json={
        "resourceType": "DocumentReference", "status": "current", "subject": {"reference": f"Patient/{PATIENT}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]})
    assert write.status_code == 403                                    # no write scope was granted


def test_codes_are_single_use_and_bound_to_the_pkce_verifier(running):
    client = Client(running)
    code = client.code()
    assert client.token(code, verifier=pkce_pair()[0]).json()["error"] == "invalid_grant"
    assert client.token(code).json()["error"] == "invalid_grant"       # spent by the failed attempt
    good = client.code()
    assert client.token(good).status_code == 200
    assert client.token(good).status_code == 400


def test_bad_authorize_requests_are_refused(running):
    client = Client(running)
    unregistered = client.authorize(redirect_uri="http://127.0.0.1:1/elsewhere")
    assert unregistered.status_code == 400 and "redirect_uri" in unregistered.text     # never redirected there
    for overrides, error in [({"code_challenge_method": "plain"}, "invalid_request"),
                             ({"code_challenge": None}, "invalid_request"),
                             ({"aud": "http://127.0.0.1:1/fhir"}, "invalid_request"),
                             ({"launch": "not-a-launch", "scope": "launch patient/*.rs"}, "invalid_request"),
                             ({"scope": "patient/*.rs"}, "invalid_scope")]:
        answer = client.authorize(**overrides)
        assert answer.status_code == 302, overrides
        assert parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == [error], overrides
    denied = parse_qs(urlsplit(client.approve(client.authorize(), decision="deny")).query)
    assert denied["error"] == ["access_denied"] and denied["state"] == ["s-1"]


# ----------------------------------------------------------------------------- in a browser

@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed; `make test` installs it with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        yield page
        browser.close()


@pytest.mark.browser
def test_ehr_launch_opens_the_app_on_the_demo_patient(running, page):
    page.goto(running.ehr_launch(PATIENT))
    # The EHR's sign-in page: the patient comes from the launch, the practitioner is picked.
    page.wait_for_selector("#approve")
    assert page.locator("#patient-name").inner_text() == "Mateo Alvarez"
    page.select_option("#practitioner", PRACTITIONER)
    page.click("#approve")
    page.wait_for_url(f"{running.service_base}/smart/app")
    assert page.locator("#determination h1").inner_text() == "Meets the policy's criteria"
    assert "Mateo Alvarez" in page.inner_text("body")
    criteria = page.locator("li.criterion")
    assert criteria.count() == 5
    assert page.locator("svg.growth-chart circle.measurement").count() > 3
    assert "0.8 mg" in page.locator("#order").inner_text()           # the launch context's draft order
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "smart-demo-ehr-launch.png"), full_page=True)
    assert page.problems == []


@pytest.mark.browser
def test_standalone_launch_picks_the_patient_at_sign_in(running, page):
    page.goto(running.standalone_launch())
    page.wait_for_selector("#patient")
    page.select_option("#patient", "demo-iss")
    page.click("#approve")
    page.wait_for_url(f"{running.service_base}/smart/app")
    assert page.locator("#determination h1").inner_text() == "Does not meet the policy's criteria"
    assert page.problems == []


def test_ehr_page_lists_every_demo_patient(running):
    html = requests.get(running.ehr, timeout=10).text
    assert html.count('href="/ehr/launch?patient=demo-') == 14
    unknown = requests.get(running.ehr_launch("nobody"), allow_redirects=False, timeout=10)
    assert unknown.status_code == 404


def test_the_cds_hooks_sandbox_launch_context_endpoint(running):
    """The sandbox POSTs {fhir}/_services/smart/Launch for a card's SMART link, then opens the link
    with launch and iss: the launch carries the card's appContext to the app's token."""
    registered = requests.post(f"{running.fhir_base}/_services/smart/Launch", timeout=10, json={
        "launchUrl": f"{running.service_base}/smart/launch",
        "parameters": {"patient": PATIENT, "appContext": f"order=MedicationRequest/{PATIENT}-mecasermin-draft"}})
    assert registered.status_code == 200
    launch = registered.json()["launch_id"]
    client = Client(running)
    sign_in = client.authorize(launch=launch, scope="launch openid fhirUser patient/*.rs")
    assert "Mateo Alvarez" in sign_in.text and 'name="patient"' not in sign_in.text
    code = parse_qs(urlsplit(client.approve(sign_in, patient=None)).query)["code"][0]
    body = client.token(code).json()
    assert body["patient"] == PATIENT and body["appContext"] == f"order=MedicationRequest/{PATIENT}-mecasermin-draft"
    unknown = requests.post(f"{running.fhir_base}/_services/smart/Launch", json={"parameters": {"patient": "nobody"}},
                            timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"
