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
    assert "HCPCS J2170, 0.8 mg per dose" in page
    assert "ICD-10-CM E34.321" in page
    assert page.count('data-status="met"') == 5
    letter = re.search(r'<ol class="letter-criteria">.*?</ol>', page, re.S).group(0)
    height = re.search(r'<li data-status="met"><strong>Height.*?</li>', letter, re.S).group(0)
    assert "100.4 cm" in height and "2026-10-20" in height and "-3.42" in height and "(see Observation/h3)" in height
    igf1 = re.search(r'<li data-status="met"><strong>Baseline IGF-1.*?</li>', letter, re.S).group(0)
    assert "18 ng/mL" in igf1 and "2026-09-02" in igf1 and "(see Observation/igf1)" in igf1
    assert "0.8 mg per dose twice daily" in page
    assert "No contraindication to mecasermin" in page
    assert "Observation/igf1" in page                                   # records cited
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
    assert "Still to be documented" not in html
    # The attachment and the page say the same thing.
    page = client.get("/smart/packet").get_data(as_text=True)
    letter = re.search(r'<article class="letter">.*?</article>', page, re.S).group(0)
    assert letter in html


def test_write_back_needs_a_write_scope(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/packet").get_data(as_text=True)
    assert "read access only" in page and "write-back" not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/smart/app").get_data(as_text=True)).group(1)
    response = client.post("/smart/packet/write-back", data={"csrf": csrf})
    assert response.status_code == 403
    assert "patient/DocumentReference.c" in response.get_data(as_text=True)
    assert ehr.documents == []


def test_write_back_with_a_granted_write_scope(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    assert ehr.authorize_requests[-1]["scope"].endswith("patient/*.rs patient/DocumentReference.c")
    page = client.get("/smart/packet").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/smart/packet/write-back", data={"csrf": "not-it"}).status_code == 400
    assert client.post("/smart/packet/write-back").status_code == 400
    assert ehr.documents == []
    response = client.post("/smart/packet/write-back", data={"csrf": csrf})
    assert response.status_code == 201
    assert "DocumentReference/doc-1" in response.get_data(as_text=True)
    assert len(ehr.documents) == 1
    DocumentReference.model_validate(ehr.documents[0])
    post = [h for m, p, h in ehr.requests if m == "POST" and p == "/fhir/DocumentReference"][0]
    assert post["Authorization"] == f"Bearer {ehr.access_tokens[-1]}"
    assert post["Content-Type"] == "application/fhir+json"


def test_write_back_when_the_ehr_grants_less_than_asked(ehr, make_app, flow_for):
    ehr.grant_scope = "launch openid fhirUser patient/*.rs"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/smart/app").get_data(as_text=True)).group(1)
    assert client.post("/smart/packet/write-back", data={"csrf": csrf}).status_code == 403


def test_write_back_v1_scope(ehr, make_app, flow_for):
    ehr.v2 = False
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    assert ehr.authorize_requests[-1]["scope"].endswith("patient/*.read patient/DocumentReference.write")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/smart/app").get_data(as_text=True)).group(1)
    assert client.post("/smart/packet/write-back", data={"csrf": csrf}).status_code == 201


def test_write_back_refused_by_the_ehr(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/smart/app").get_data(as_text=True)).group(1)
    ehr.document_status = 422
    response = client.post("/smart/packet/write-back", data={"csrf": csrf})
    assert response.status_code == 502
    assert "refused the document (HTTP 422)" in response.get_data(as_text=True)


def test_contraindication_and_exclusion_appear_in_app_and_letter(ehr, make_app, flow_for):
    ehr.prefetch["conditions"]["entry"].append(
        {"resource": condition("c9", "C71.9", "Malignant neoplasm of brain, unspecified")})
    client = _signed_in(ehr, make_app, flow_for)
    page = client.get("/smart/app").get_data(as_text=True)
    assert "Contraindications" in page and "severity-critical" in page
    letter = client.get("/smart/packet").get_data(as_text=True)
    assert "they must be resolved before treatment" in letter
