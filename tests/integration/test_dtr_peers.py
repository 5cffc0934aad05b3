"""DTR against real peers: the service under gunicorn fetches the chart from the demo FHIR server at
the CRD call (fetch mode), keeps it across worker processes, answers $questionnaire-package with the
CRD `context` and $next-question over HTTP, and the completed QuestionnaireResponse, its Questionnaire
and the package Bundle are accepted by the FHIR server, which validates every resource it stores
against the R4 StructureDefinitions (Medplum's validator: an independent implementation)."""
from __future__ import annotations

import pytest
import requests

from tests.integration.test_end_to_end import CHARTS, call, demo

pytestmark = pytest.mark.integration
INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
FHIR_JSON = "application/fhir+json"
ANSWERS = {
    "demo-no-bone-age": [{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 6.5}]},
                         {"linkId": "q-bone-age.date", "answer": [{"valueDate": "2026-11-02"}]}],
    "demo-igf1-no-range": [{"linkId": "q-igf1.value", "answer": [{"valueDecimal": 19}]},
                           {"linkId": "q-igf1.low", "answer": [{"valueDecimal": 64}]},
                           {"linkId": "q-igf1.high", "answer": [{"valueDecimal": 345}]},
                           {"linkId": "q-igf1.date", "answer": [{"valueDate": "2026-10-01"}]}],
}


def post(url: str, body: dict) -> dict:
    response = requests.post(url, json=body, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}, timeout=30)
    assert response.status_code in (200, 201), response.text[:1500]
    return response.json()


@pytest.mark.parametrize("pid", sorted(ANSWERS))
def test_crd_then_dtr_over_http_and_the_response_stored_by_a_validating_fhir_server(pid, fhir_server, cds_service,
                                                                                     fhir_server_factory):
    answer = call(cds_service, "mecasermin-order-sign", demo.hook_request(CHARTS[pid], "order-sign",
                                                                          fhir_base=fhir_server))
    info = {e["url"]: e for a in answer["systemActions"] for x in a["resource"]["extension"] if x["url"] == INFO
            for e in x["extension"]}
    assert info["doc-needed"]["valueCode"] == "clinical"
    coverage = requests.get(f"{fhir_server}/{info['coverage']['valueReference']['reference']}", timeout=10).json()
    base = f"{cds_service.base_url}/dtr/Questionnaire"
    package = post(f"{base}/$questionnaire-package", {"resourceType": "Parameters", "parameter": [
        {"name": "coverage", "resource": coverage},
        {"name": "context", "valueString": info["coverage-assertion-id"]["valueString"]}]})
    bundle = package["parameter"][0]["resource"]
    assert bundle["entry"][0]["resource"]["url"] == info["questionnaire"]["valueCanonical"]
    qr = bundle["entry"][1]["resource"]
    asked = []
    for _ in range(6):           # several gunicorn workers: each step may land on another one
        qr = post(f"{base}/$next-question", {"resourceType": "Parameters", "parameter": [{"name": "in", "resource": qr}]}
                  )["parameter"][0]["resource"]
        if qr["status"] == "completed":
            break
        asked.append(qr["item"][-1]["linkId"])
        qr["item"][-1]["item"] = ANSWERS[pid]
    assert asked == [ANSWERS[pid][0]["linkId"].split(".")[0]]
    assert qr["item"][-1]["item"][0]["answer"][0]["valueCoding"]["code"] == "meets-criteria"

    store = fhir_server_factory(data=[])        # empty, validating (not --lenient)
    stored = post(f"{store}/QuestionnaireResponse", qr)
    assert stored["status"] == "completed" and stored["contained"][0]["resourceType"] == "Questionnaire"
    post(f"{store}/Questionnaire", qr["contained"][0])
    post(f"{store}/Bundle", bundle)
    invalid = requests.post(f"{store}/QuestionnaireResponse", json={**qr, "status": 7},
                            headers={"Content-Type": FHIR_JSON}, timeout=10)
    assert invalid.status_code == 400          # the server does validate
