"""The DTR operations over HTTP: CRD → $questionnaire-package (context) → $next-question, the chart
kept sealed between them, and every bad request answered with an OperationOutcome, never a 500."""
from __future__ import annotations

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from service.app import create_app
from service.settings import Settings
from service.storage.tables import dtr_snapshot
from tests.conftest import TODAY
from tests.security.jwt_helpers import EHR_ISS, claims, ec_key, public_jwk, sign
from tests.cards.answers import PATIENTS, demo_resources, order_body
from tests.dtr.flow import EXPECTED
from tests.dtr.profiles import package_bundle_problems, questionnaire_response_problems, r4_valid

SIGN = "/cds-services/mecasermin-order-sign"
PACKAGE = "/dtr/Questionnaire/$questionnaire-package"
NEXT = "/dtr/Questionnaire/$next-question"
INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def crd(client, patient_id):
    resources = demo_resources(PATIENTS / f"{patient_id}.json")
    answer = client.post(SIGN, json=order_body(resources, "order-sign")).get_json()
    parts = [{e["url"]: e for e in ext["extension"]} for a in answer.get("systemActions", ())
             for ext in a["resource"]["extension"] if ext["url"] == INFO]
    return resources, answer, parts[0] if parts else None


def package_params(resources, context=None, order=False, **extra):
    coverage = next(r for r in resources if r["resourceType"] == "Coverage")
    params = [{"name": "coverage", "resource": coverage}]
    if order:
        params.append({"name": "order", "resource": next(r for r in resources if r["resourceType"] == "MedicationRequest"
                                                          and r.get("status") == "draft")})
    if context:
        params.append({"name": "context", "valueString": context})
    return {"resourceType": "Parameters", "parameter": params, **extra}


def step(client, qr):
    response = client.post(NEXT, json={"resourceType": "Parameters", "parameter": [{"name": "in", "resource": qr}]})
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    out = response.get_json()
    assert [p["name"] for p in out["parameter"]] == ["return"]
    r4_valid(out)
    qr = out["parameter"][0]["resource"]
    assert questionnaire_response_problems(qr) == []
    return qr


@pytest.mark.parametrize("patient_id", sorted(EXPECTED))
def test_crd_names_the_questionnaire_only_with_doc_needed(client, patient_id):
    _, answer, info = crd(client, patient_id)
    links = [link["url"] for card in answer["cards"] for link in card.get("links", ())]
    doc_needed = info is not None and "doc-needed" in info
    assert ("questionnaire" in info if info else False) == doc_needed
    assert any(url.endswith("/smart/dtr") for url in links) == doc_needed
    if doc_needed:
        assert info["questionnaire"]["valueCanonical"].startswith("https://mecasermin-cds.example/fhir/Questionnaire/")


def test_crd_then_dtr_asks_what_is_missing_and_the_answer_meets(client):
    resources, _, info = crd(client, "demo-no-bone-age")
    response = client.post(PACKAGE, json=package_params(resources, info["coverage-assertion-id"]["valueString"]))
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    out = response.get_json()
    r4_valid(out)
    assert [p["name"] for p in out["parameter"]] == ["PackageBundle"]
    bundle = out["parameter"][0]["resource"]
    assert package_bundle_problems(bundle) == []
    assert bundle["entry"][0]["resource"]["url"] == info["questionnaire"]["valueCanonical"]
    qr = step(client, bundle["entry"][1]["resource"])
    assert [g["linkId"] for g in qr["item"]] == ["on-file", "q-bone-age"]
    qr["item"][-1]["item"] = [{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 6.5}]},
                              {"linkId": "q-bone-age.date", "answer": [{"valueDate": "2026-11-02"}]}]
    qr = step(client, qr)
    assert qr["status"] == "completed"
    assert qr["item"][-1]["item"][0]["answer"][0]["valueCoding"]["code"] == "meets-criteria"


def test_without_context_the_questionnaire_asks_from_what_was_sent(client):
    resources = demo_resources(PATIENTS / "demo-no-bone-age.json")
    out = client.post(PACKAGE, json=package_params(resources, order=True)).get_json()
    qr = step(client, out["parameter"][0]["resource"]["entry"][1]["resource"])
    # No chart but the coverage and the order: the diagnosis (on the order) is read, the rest is asked.
    assert qr["item"][-1]["linkId"] == "q-height"


def test_an_unknown_context_with_an_order_falls_back_with_a_warning(client):
    resources = demo_resources(PATIENTS / "demo-no-bone-age.json")
    out = client.post(PACKAGE, json=package_params(resources, "not-an-assertion-id", order=True)).get_json()
    warning = [p for p in out["parameter"] if p["name"] == "operationOutcome"]
    assert warning and warning[0]["resource"]["issue"][0]["severity"] == "warning"


def test_the_kept_chart_is_sealed(app, client):
    resources, _, info = crd(client, "demo-no-bone-age")
    assertion_id = info["coverage-assertion-id"]["valueString"]
    database = app.extensions["mecasermin"].store.database
    with database.read() as db:
        rows = db.execute(select(dtr_snapshot.c.id_hash, dtr_snapshot.c.payload)).all()
    assert len(rows) == 1
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    payload = bytes(rows[0].payload)
    for secret in (patient["id"], assertion_id, "Observation", "demo"):
        assert secret.encode() not in payload
    assert assertion_id not in rows[0].id_hash


def _outcome(response, status, words):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    r4_valid(body)
    assert words in body["issue"][0]["diagnostics"], body


COVERAGE = {"resourceType": "Coverage", "id": "c", "status": "active", "beneficiary": {"reference": "Patient/p"},
            "payor": [{"display": "Premera Blue Cross"}]}


@pytest.mark.parametrize("body, status, words", [
    ({"resourceType": "Bundle"}, 400, "takes a Parameters resource, not Bundle"),
    ([1, 2], 400, "takes a Parameters resource"),
    ({"resourceType": "Parameters"}, 400, "non-empty list"),
    ({"resourceType": "Parameters", "parameter": [{"value": 1}]}, 400, "with a name"),
    ({"resourceType": "Parameters", "parameter": [{"name": "context", "valueString": "x", "resource": COVERAGE}]},
     422, "one and only one"),
    ({"resourceType": "Parameters", "parameter": [{"name": "context", "valueString": "x"}]}, 422, "coverage is required"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE}]}, 422, "dtr-1"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": {"resourceType": "Patient"}},
                                                  {"name": "context", "valueString": "x"}]}, 422, "must be a Coverage"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": {**COVERAGE, "status": 7}},
                                                  {"name": "context", "valueString": "x"}]}, 422, "not a valid R4 Coverage"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": {**COVERAGE, "_status": "-0"}},
                                                  {"name": "context", "valueString": "x"}]}, 422, "not a valid R4 Coverage"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE},
                                                  {"name": "color", "valueString": "x"}]}, 422, "no parameter 'color'"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE},
                                                  {"name": "context", "valueString": "unknown"}]}, 422, "context is not"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE},
                                                  {"name": "questionnaire", "valueCanonical": "http://x/Q/1"}]},
     422, "none of the canonicals"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE},
                                                  {"name": "order", "resource": COVERAGE}]}, 422, "must be a request"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE}, {"name": "order", "resource": {
        "resourceType": "MedicationRequest", "status": "draft", "intent": "order", "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "amoxicillin 250 mg"}}}]}, 422, "no order is a mecasermin"),
    ({"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE},
                                                  {"name": "context", "valueString": "x" * 500}]}, 422, "at most 200"),
])
def test_bad_package_parameters_are_an_operation_outcome(client, body, status, words):
    _outcome(client.post(PACKAGE, json=body), status, words)


def _started_qr(client):
    resources, _, info = crd(client, "demo-no-bone-age")
    out = client.post(PACKAGE, json=package_params(resources, info["coverage-assertion-id"]["valueString"])).get_json()
    return out["parameter"][0]["resource"]["entry"][1]["resource"]


def test_bad_next_question_parameters_are_an_operation_outcome(client):
    qr = _started_qr(client)
    _outcome(client.post(NEXT, json={"resourceType": "Parameters", "parameter": [{"name": "out", "resource": qr}]}),
             422, "exactly one parameter `in`")
    _outcome(client.post(NEXT, json={"resourceType": "Parameters", "parameter": [{"name": "in", "resource": COVERAGE}]}),
             422, "must be a QuestionnaireResponse")
    _outcome(client.post(NEXT, json={"resourceType": "Observation"}), 400, "takes a Parameters resource")
    no_session = copy.deepcopy(qr)
    no_session["extension"] = [e for e in no_session["extension"] if "dtr-session" not in e["url"]]
    _outcome(client.post(NEXT, json=no_session), 422, "names no chart")
    wrong = copy.deepcopy(qr)
    wrong["status"] = "sideways"
    _outcome(client.post(NEXT, json=wrong), 422, "status must be one of")
    wrong["status"] = 42
    _outcome(client.post(NEXT, json=wrong), 422, "not a valid R4 QuestionnaireResponse")
    assert client.post(NEXT, json=qr).status_code == 200       # the resource itself, unwrapped, is accepted too


def test_hostile_bodies_are_an_operation_outcome(client, app):
    limit = app.extensions["mecasermin"].settings.max_body_bytes
    _outcome(client.post(PACKAGE, data=b"{}", content_type="text/plain"), 415, "Content-Type")
    _outcome(client.post(PACKAGE, data=b"{" + b" " * limit + b"}", content_type="application/fhir+json"),
             413, "larger than")
    deep = {"resourceType": "Parameters", "parameter": [{"name": "context", "valueString": "x"}]}
    node = deep
    for _ in range(200):
        node["part"] = [{}]
        node = node["part"][0]
    _outcome(client.post(PACKAGE, json=deep), 400, "nests deeper")
    _outcome(client.post(PACKAGE, data=b"{\"resourceType\": ", content_type="application/json"), 400, "not valid JSON")
    many = {"resourceType": "Parameters", "parameter": [{"name": "referenced", "resource": COVERAGE}] * 20000}
    response = client.post(PACKAGE, json=many)
    assert response.status_code in (413,) and response.get_json()["resourceType"] == "OperationOutcome"


def test_markdown_and_html_in_an_answer_stay_data(client):
    qr = step(client, _started_qr(client))
    qr["item"][-1]["item"] = [{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 6.5}]},
                              {"linkId": "q-bone-age.date", "answer": [{"valueDate": "2026-11-02"}]}]
    qr["item"][-1]["text"] = "<img src=x onerror=alert(1)> [click](javascript:alert(1))"
    grown = step(client, qr)
    text = json.dumps(grown)
    assert "onerror" not in text and "javascript:" not in text      # the group text is the policy's, rebuilt


def test_an_unauthenticated_caller_gets_a_401_outcome(tmp_path):
    """The CDS clients' rule (docs/dtr.md): a JWT from a trusted issuer, audience the URL called."""
    issuers = tmp_path / "issuers.json"
    key = ec_key(ec.SECP384R1())
    issuers.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(key, "ehr-1", "ES384")]}}]))
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/cds.sqlite3", auth_mode="required",
                                 audit_hash_key="k-test-0123456789", trusted_issuers_file=str(issuers),
                                 fhir_allowlist=("https://fhir.example-health.org/r4",),
                                 public_base_url="https://cds.example-health.org")
    client = create_app(settings, today=lambda: TODAY).test_client()
    _outcome(client.post(PACKAGE, json={"resourceType": "Parameters"}), 401, "Authentication failed")
    _outcome(client.post(NEXT, json={"resourceType": "Parameters"}), 401, "Authentication failed")
    wrong_audience = "Bearer " + sign(key, "ES384", "ehr-1", claims(aud="https://cds.example-health.org" + NEXT))
    _outcome(client.post(PACKAGE, json={}, headers={"Authorization": wrong_audience}), 401, "Authentication failed")
    signed = "Bearer " + sign(key, "ES384", "ehr-1", claims(aud="https://cds.example-health.org" + PACKAGE))
    _outcome(client.post(PACKAGE, json={"resourceType": "Parameters"}, headers={"Authorization": signed}),
             400, "non-empty list")          # authenticated: the body is read
