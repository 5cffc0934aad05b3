"""The prior-authorization packet: printable letter, FHIR DocumentReference, write-back."""
from __future__ import annotations

import base64
import re

from fhir.resources.R4B.documentreference import DocumentReference

from tests.fixtures import condition


def _signed_in(ehr, make_app, flow_for, **settings):
    client = make_app(**settings).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    return client


def test_packet_page_is_a_printable_letter_filled_with_the_patients_facts(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    response = client.get("/smart/packet")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'class="letter"' in page and "@media print" not in page        # print rules live in the stylesheet
    assert "Tobi Okafor, born 2020-05-14" in page
    assert "To: Premera Blue Cross" in page
    request = re.search(r'<table class="request">.*?</table>', page, re.S).group(0)
    assert "0.8 mg (0.08 mL of 10 mg/mL) per dose" in request and "twice daily" in request
    assert "4 mL" in request and "30 days per fill" in request and "not given" not in request
    assert "ICD-10-CM E34.321" in page
    assert page.count('data-status="met"') == 5
    letter = re.search(r'<ol class="letter-criteria">.*?</ol>', page, re.S).group(0)
    height = re.search(r'<li data-status="met"><strong>Height.*?</li>', letter, re.S).group(0)
    assert "100.4 cm" in height and "2026-10-20" in height and "\u22123.42" in height
    igf1 = re.search(r'<li data-status="met"><strong>Baseline IGF-1.*?</li>', letter, re.S).group(0)
    assert "18 ng/mL" in igf1 and "2026-09-02" in igf1
    article = re.search(r'<article class="letter">.*?</article>', page, re.S).group(0)
    words = re.sub(r"<svg.*?</svg>", "", article, flags=re.S)         # the chart's tooltips keep raw values
    for programmer in ("Observation/", "Condition/", "MedicationRequest/", "&lt;=", "&gt;=", "ug/L", " -3"):
        assert programmer not in words, programmer
    assert "No contraindication to mecasermin" in page and "NOT TO BE SENT" not in page
    assert "computed from the laboratory&#39;s reference range" in article              # how the SDS was derived
    assert 'class="growth-chart"' in article                                            # the chart is in the letter
    signature = re.search(r'<div class="signature">.*?</div>', article, re.S).group(0)
    assert "Grace Adeyemi, MD" in signature and "NPI 1234567893" in signature
    assert "+1 206 555 0142" in signature and "Fax +1 206 555 0143" in signature
    assert "4800 Sand Point Way NE" in signature and "12 Private Lane" not in signature
    assert "To complete before sending" not in page                     # nothing unknown here
    css = client.get("/smart/static/smart.css").get_data(as_text=True)
    assert "@media print" in css and ".no-print" in css


def test_letter_lists_what_is_still_to_be_documented(ehr, make_app, flow_for):
    observations = ehr.prefetch["observations"]
    observations["entry"] = [e for e in observations["entry"] if e["resource"]["code"]["coding"][0]["code"] != "85151-9"]
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/packet").get_data(as_text=True)
    assert "To complete before sending" in page
    assert "Still to be documented before sending" in page
    app_page = client.get("/smart/app").get_data(as_text=True)
    assert 'data-test="bone-age"' in app_page and "LOINC 85151-9" in app_page


def test_packet_json_is_a_valid_r4_document_reference(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for)
    response = client.get("/smart/packet.json")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert "attachment" in response.headers["Content-Disposition"]
    resource = response.get_json()
    document = DocumentReference.model_validate(resource)
    assert document.status == "current" and document.docStatus == "preliminary"
    assert document.subject.reference == "Patient/p1"
    assert document.type.coding[0].code == "51852-2"
    assert document.context.related[0].reference == "MedicationRequest/mr-1"
    attachment = document.content[0].attachment
    assert attachment.contentType.startswith("text/html")
    html = base64.b64decode(resource["content"][0]["attachment"]["data"]).decode("utf-8")
    assert html.startswith("<!doctype html>")
    assert "Tobi Okafor" in html and "Severe primary IGF-1 deficiency" in html
    assert resource["author"] == [{"reference": "Practitioner/dr-7", "display": "Grace Adeyemi, MD"}]
    assert "Still to be documented" not in html
    # The attachment and the page say the same thing.
    page = client.get("/smart/packet").get_data(as_text=True)
    letter = re.search(r'<article class="letter">.*?</article>', page, re.S).group(0)
    assert re.sub(r'\s+', ' ', letter) == re.sub(r'\s+', ' ', re.search(r'<article class="letter">.*?</article>', html, re.S).group(0))


def _form(client) -> dict:
    page = client.get("/smart/packet").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page)
    return {"csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1),
            "key": key.group(1) if key else "6f1c2a4e-1b2c-4d3e-8f40-5a6b7c8d9e0f"}


def test_write_back_needs_a_write_scope(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/packet").get_data(as_text=True)
    assert "read access only" in page and "write-back" not in page
    response = client.post("/smart/packet/write-back", data=_form(client))
    assert response.status_code == 403
    assert "patient/DocumentReference.c" in response.get_data(as_text=True)
    assert ehr.documents == []


def test_write_back_once_with_post_redirect_get_and_an_author(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    assert ehr.authorize_requests[-1]["scope"].endswith(
        "patient/*.rs patient/DocumentReference.c patient/QuestionnaireResponse.c")
    form = _form(client)
    assert client.post("/smart/packet/write-back", data={**form, "csrf": "not-it"}).status_code == 400
    assert client.post("/smart/packet/write-back", data={"csrf": form["csrf"]}).status_code == 400   # no key
    assert client.post("/smart/packet/write-back").status_code == 400
    assert ehr.documents == []
    response = client.post("/smart/packet/write-back", data=form)
    assert response.status_code == 303
    result_url = response.headers["Location"]
    assert result_url.endswith(f"/smart/packet/written/{form['key']}")
    for _ in range(3):                                    # reloading the result page writes nothing
        shown = client.get(result_url)
        assert shown.status_code == 200 and "DocumentReference/doc-1" in shown.get_data(as_text=True)
    again = client.post("/smart/packet/write-back", data=form)   # the browser resends the POST
    assert again.status_code == 303 and again.headers["Location"] == result_url
    assert len(ehr.documents) == 1
    document = ehr.documents[0]
    DocumentReference.model_validate(document)
    assert document["author"] == [{"reference": "Practitioner/dr-7", "display": "Grace Adeyemi, MD"}]
    assert document["masterIdentifier"] == {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{form['key']}"}
    post = [h for m, p, h in ehr.requests if m == "POST" and p == "/fhir/DocumentReference"][0]
    assert post["Authorization"] == f"Bearer {ehr.access_tokens[-1]}"
    assert post["Content-Type"] == "application/fhir+json"
    assert post["If-None-Exist"] == f"identifier=urn:ietf:rfc:3986|urn:uuid:{form['key']}"
    # A new page render is a new key: a deliberate second save is possible.
    second = _form(client)
    assert second["key"] != form["key"]
    assert client.post("/smart/packet/write-back", data=second).status_code == 303
    assert len(ehr.documents) == 2


def test_write_back_needs_a_practitioner_as_the_author(ehr, make_app, flow_for):
    ehr.fhir_user = None
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    page = client.get("/smart/packet").get_data(as_text=True)
    assert "did not say which practitioner is signed in" in page and 'name="key"' not in page
    response = client.post("/smart/packet/write-back", data=_form(client))
    assert response.status_code == 403 and "without its author" in response.get_data(as_text=True)
    assert ehr.documents == []


def test_write_back_when_the_ehr_grants_less_than_asked(ehr, make_app, flow_for):
    ehr.grant_scope = "launch openid fhirUser patient/*.rs"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    assert client.post("/smart/packet/write-back", data=_form(client)).status_code == 403


def test_write_back_v1_scope(ehr, make_app, flow_for):
    ehr.v2 = False
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    assert ehr.authorize_requests[-1]["scope"].endswith(
        "patient/*.read patient/DocumentReference.write patient/QuestionnaireResponse.write")
    assert client.post("/smart/packet/write-back", data=_form(client)).status_code == 303


def test_write_back_refused_by_the_ehr_can_be_tried_again(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    form = _form(client)
    ehr.document_status = 422
    response = client.post("/smart/packet/write-back", data=form)
    assert response.status_code == 502
    assert "refused the letter (HTTP 422)" in response.get_data(as_text=True)
    ehr.document_status = 201
    assert client.post("/smart/packet/write-back", data=form).status_code == 303
    assert len(ehr.documents) == 1


def test_contraindication_and_exclusion_appear_in_app_and_letter(ehr, make_app, flow_for):
    ehr.prefetch["conditions"]["entry"].append(
        {"resource": condition("c9", "C71.9", "Malignant neoplasm of brain, unspecified")})
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    assert "Contraindications" in page and "severity-critical" in page
    letter = client.get("/smart/packet").get_data(as_text=True)
    assert "they must be resolved first" in letter
