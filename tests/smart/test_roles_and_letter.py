"""Issue 17: what decides the order comes first, a letter a payer can act on (blocked while a
critical finding stands, prescriber and supply from the EHR or asked for, PDF), launch roles from
fhirUser, and the embedding settings (cookie attributes, frame-ancestors)."""
from __future__ import annotations

import re

import pytest

from service.settings import Settings, SettingsError
from service.smart.browser_session import COOKIE
from service.smart.oauth import id_token_user, user_role
from tests.fixtures import condition, mecasermin_order


def _signed_in(ehr, make_app, flow_for, **settings):
    client = make_app(**settings).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    return client


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_an_overdose_opens_the_page_in_red_with_the_fix_and_blocks_the_letter(ehr, make_app, flow_for):
    ehr.orders["mr-1"] = mecasermin_order(dose_mg=3.0)          # 3 mg at 15.2 kg = 0.197 mg/kg
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    page = client.get("/smart/app").get_data(as_text=True)
    critical = page.index('id="critical"')
    assert critical < page.index('id="determination"') < page.index('id="label"')
    block = re.search(r'<section class="panel critical".*?</section>', page, re.S).group(0)
    assert 'data-finding="dose-above-maximum"' in block
    assert "What to do:" in block and "Change the dose to 1.2 mg (0.12 mL) per dose" in block
    assert "determination-meets-criteria overridden" in page or "overridden" in page
    letter = client.get("/smart/packet").get_data(as_text=True)
    assert "NOT TO BE SENT" in letter and "must not be sent while the findings above stand" in letter
    assert "I ask that it be approved" not in letter and "I am asking the plan to approve" not in letter
    assert 'name="key"' not in letter
    assert "Download PDF" not in letter
    assert client.get("/smart/packet.pdf").status_code == 409
    response = client.post("/smart/packet/write-back",
                           data={"csrf": _csrf(page), "key": "6f1c2a4e-1b2c-4d3e-8f40-5a6b7c8d9e0f"})
    assert response.status_code == 409 and ehr.documents == []


def test_a_malignancy_history_blocks_the_letter(ehr, make_app, flow_for):
    ehr.prefetch["conditions"]["entry"].append(
        {"resource": condition("c9", "Z85.841", "Personal history of malignant neoplasm of brain", status="resolved")})
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    assert page.index('id="critical"') < page.index('id="determination"')
    assert "History of malignancy" in page and "Do not start mecasermin" in page
    letter = client.get("/smart/packet").get_data(as_text=True)
    assert "NOT TO BE SENT" in letter and "History of malignancy" in letter


def test_a_clean_record_has_no_critical_block_and_a_pdf(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    assert 'id="critical"' not in page and "overridden" not in page
    response = client.get("/smart/packet.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-") and len(response.data) > 5000
    assert "attachment" in response.headers["Content-Disposition"]


def test_missing_prescriber_and_order_details_are_asked_for_and_checked(ehr, make_app, flow_for):
    ehr.practitioner_roles = []
    ehr.practitioners["dr-7"].pop("identifier")
    client = _signed_in(ehr, make_app, flow_for)           # no order named: no dose, no supply
    letter = client.get("/smart/packet").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/smart/packet/details".*?</form>', letter, re.S).group(0)
    for field in ('name="npi"', 'name="phone"', 'name="dose_mg"', 'name="frequency"', 'name="quantity"',
                  'name="duration"'):
        assert field in form, field
    assert 'name="name"' not in form                       # the EHR gave the name
    assert "not given: enter it below" in letter
    csrf = _csrf(letter)
    bad = client.post("/smart/packet/details", data={"csrf": csrf, "npi": "1234567890"})
    assert bad.status_code == 422 and "check digit" in bad.get_data(as_text=True)
    assert client.post("/smart/packet/details", data={"csrf": csrf, "dose_mg": "80"}).status_code == 422
    assert client.post("/smart/packet/details", data={"npi": "1234567893"}).status_code == 400   # no CSRF
    saved = client.post("/smart/packet/details", data={
        "csrf": csrf, "npi": "1234567893", "phone": "+1 206 555 0100", "dose_mg": "0.8", "frequency": "2",
        "quantity": "4 vials of 40 mg/4 mL", "duration": "12 months"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/smart/packet")
    letter = client.get("/smart/packet").get_data(as_text=True)
    article = re.search(r'<article class="letter">.*?</article>', letter, re.S).group(0)
    assert "NPI 1234567893" in article and "Phone +1 206 555 0100" in article
    assert "0.8 mg (0.08 mL of 10 mg/mL) per dose" in article and "twice daily" in article
    assert "4 vials of 40 mg/4 mL" in article and "12 months" in article
    assert "not checked against the patient" in article
    assert 'action="/smart/packet/details"' not in letter        # nothing left to ask


def test_a_patient_launch_gets_a_plain_read_only_view(ehr, make_app, flow_for):
    ehr.fhir_user = "Patient/p1"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    page = client.get("/smart/app").get_data(as_text=True)
    assert "Where the review of mecasermin (Increlex) stands" in page
    assert "Latest height: 100.4 cm on 2026-10-20." in page            # the newest measurement, not the first listed
    assert "/smart/packet" not in page and "Observation/" not in page and "write-back" not in page
    for path in ("/smart/packet", "/smart/packet.pdf", "/smart/packet.json"):
        assert client.get(path).status_code == 403, path
    response = client.post("/smart/packet/write-back",
                           data={"csrf": _csrf(page), "key": "6f1c2a4e-1b2c-4d3e-8f40-5a6b7c8d9e0f"})
    assert response.status_code == 403 and ehr.documents == []


def test_a_related_person_is_a_patient_role_too(ehr, make_app, flow_for):
    ehr.fhir_user = "RelatedPerson/mother-1"
    client = _signed_in(ehr, make_app, flow_for)
    assert client.get("/smart/packet").status_code == 403


def test_id_token_checks():
    import jwt

    def token(**claims):
        return jwt.encode({"aud": "app", "exp": 2_000_000_000, **claims}, "k" * 32, algorithm="HS256")

    now = 1_900_000_000
    assert id_token_user(token(fhirUser="https://ehr/fhir/Practitioner/a1"), client_id="app", now=now) == \
        ("Practitioner/a1", None)
    assert id_token_user(token(fhirUser="Practitioner/a1", aud="other"), client_id="app", now=now)[1] == \
        "the id_token was issued to another client"
    assert id_token_user(token(fhirUser="Practitioner/a1", exp=now - 3600), client_id="app", now=now)[1] == \
        "the id_token has expired"
    assert id_token_user(token(fhirUser="Organization/o1"), client_id="app", now=now)[0] is None
    assert id_token_user(token(), client_id="app", now=now)[1] == "the id_token names no fhirUser"
    assert id_token_user("not-a-jwt", client_id="app", now=now)[1] == "the id_token could not be read"
    assert id_token_user(None, client_id="app", now=now)[1] == "the EHR sent no id_token"
    assert [user_role(u) for u in ("Patient/p", "RelatedPerson/r", "Practitioner/d", "PractitionerRole/x", None)] \
        == ["patient", "patient", "clinician", "clinician", "unknown"]


def test_https_cookie_is_samesite_none_secure_partitioned(ehr, make_app):
    client = make_app(public_base_url="https://cds.example.org").test_client()
    response = client.get(f"/smart/launch?iss={ehr.iss}&launch=abc", base_url="https://cds.example.org")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/smart"):
        assert attribute in cookie, attribute


def test_frame_ancestors_from_the_setting(ehr, make_app):
    default = make_app().test_client().get("/smart/launch")
    assert "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*" in default.headers["Content-Security-Policy"]
    client = make_app(smart_frame_ancestors=("https://ehr.example.org",)).test_client()
    policy = client.get("/smart/launch").headers["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors https://ehr.example.org")
    assert "frame-ancestors 'none'" in make_app(smart_frame_ancestors=()).test_client().get(
        "/smart/launch").headers["Content-Security-Policy"]


@pytest.mark.parametrize("value", ["https://ehr.example.org; script-src *", "ehr.example.org", "'none',https://a.org",
                                   "http://[::1]:*"])
def test_frame_ancestors_setting_is_checked(value):
    with pytest.raises(SettingsError):
        Settings.from_env({"CDS_SMART_FRAME_ANCESTORS": value})


def test_a_named_order_that_is_not_found_is_not_called_unnamed(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/gone"
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    assert "could not be used" in page and "No mecasermin order was named" not in page


def test_diagnosis_evidence_is_listed_once_per_record(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    diagnosis = re.search(r'data-criterion="diagnosis".*?</li>\s*</ul>', page, re.S).group(0)
    refs = re.findall(r'<code class="ref">([^<]+)</code>', diagnosis)
    assert len(refs) == len({r.split("#")[0] for r in refs})


def test_pdf_without_its_renderer_is_a_clear_503(ehr, make_app, flow_for, monkeypatch):
    import sys

    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    monkeypatch.setitem(sys.modules, "service.smart.pdf", None)       # import fails, as without Pango
    response = client.get("/smart/packet.pdf")
    assert response.status_code == 503
    assert "PDF export is not available" in response.get_data(as_text=True)


def test_a_practitioner_role_as_fhir_user_signs_with_its_practitioner(ehr, make_app, flow_for):
    ehr.fhir_user = "PractitionerRole/role-7"
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    letter = client.get("/smart/packet").get_data(as_text=True)
    signature = re.search(r'<div class="signature">.*?</div>', letter, re.S).group(0)
    assert "Grace Adeyemi, MD" in signature and "NPI 1234567893" in signature
    assert "Children&#39;s Endocrine Clinic" in signature and "+1 206 555 0142" in signature
    resource = client.get("/smart/packet.json").get_json()
    assert resource["author"] == [{"reference": "PractitionerRole/role-7", "display": "Grace Adeyemi, MD"}]
    assert not any(p.startswith("/fhir/PractitionerRole?") for _, p, _ in ehr.requests)   # the named role is used


def test_prescriber_from_the_order_when_the_user_is_not_named(ehr, make_app, flow_for):
    ehr.fhir_user = None
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    letter = client.get("/smart/packet").get_data(as_text=True)
    signature = re.search(r'<div class="signature">.*?</div>', letter, re.S).group(0)
    assert "Grace Adeyemi, MD" in signature and "NPI 1234567893" in signature
    assert 'action="/smart/packet/details"' not in letter           # the requester's record was complete


def test_a_partial_birth_date_is_shown_as_recorded_never_as_the_first_of_the_month(ehr, make_app, flow_for):
    """Born "2020-05" (the EHR knows only the month): the letter to the payer and the banner must not
    state 2020-05-01, nor an age in months that only that day gives."""
    ehr.prefetch["patient"]["birthDate"] = "2020-05"
    client = _signed_in(ehr, make_app, flow_for)
    for page in (client.get("/smart/app").get_data(as_text=True), client.get("/smart/packet").get_data(as_text=True)):
        assert "born 2020-05-01" not in page and re.search(r"born 2020-05(?!-)", page)
    letter = client.get("/smart/packet").get_data(as_text=True)
    assert re.search(r"aged 6 years \d+ months to 6 years \d+ months", letter), letter[:3000]
