"""CDS Hooks 2.0.1 protocol through the HTTP layer: discovery, errors, CORS, feedback, health."""
import json

import pytest

from service.validation import violations
from tests.fixtures import mecasermin_order, order_select_request, order_sign_request

SELECT = "/cds-services/mecasermin-order-select"
SIGN = "/cds-services/mecasermin-order-sign"


def test_discovery_lists_both_services_with_legal_prefetch(client):
    body = client.get("/cds-services").get_json()
    assert not violations("discovery.schema.json", body)
    services = {s["id"]: s for s in body["services"]}
    assert services["mecasermin-order-select"]["hook"] == "order-select"
    assert services["mecasermin-order-sign"]["hook"] == "order-sign"
    prefetch = services["mecasermin-order-select"]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "status=active" in prefetch["coverage"]
    options = services["mecasermin-order-sign"]["extension"]["davinci-crd.configuration-options"]
    assert {o["code"] for o in options} >= {"coverage", "max-cards"}


def test_non_mecasermin_order_gets_no_cards(client, store):
    order = mecasermin_order()
    order["medicationCodeableConcept"] = {"text": "amoxicillin 500 MG Oral Capsule"}
    response = client.post(SELECT, json=order_select_request(prefetch=None, order=order))
    assert response.status_code == 200 and response.get_json() == {"cards": []}


def test_order_select_looks_only_at_selected_orders(client):
    other = mecasermin_order(order_id="mr-other")
    other["medicationCodeableConcept"] = {"text": "ibuprofen 100 MG/5ML Oral Suspension"}
    body = order_select_request(selections=["MedicationRequest/mr-other"])
    body["context"]["draftOrders"]["entry"].append({"resource": other})
    assert client.post(SELECT, json=body).get_json() == {"cards": []}


def test_sandbox_quirks_are_tolerated(client):
    body = order_select_request()
    del body["context"]["draftOrders"]["type"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["reasonCode"] = order["reasonCode"][0]
    order["category"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                     "code": "outpatient"}]}
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"]


def test_unknown_service_is_404(client):
    response = client.post("/cds-services/nope", json=order_select_request())
    assert response.status_code == 404 and response.get_json()["error"] == "unknown-service"


def test_hook_mismatch_is_400(client):
    response = client.post(SIGN, json=order_select_request())
    assert response.status_code == 400 and response.get_json()["error"] == "hook-mismatch"


def test_non_json_content_type_is_415(client):
    response = client.post(SELECT, data="hook=order-select", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "application/json" in response.get_json()["message"]


def test_malformed_json_is_400_with_position(client):
    response = client.post(SELECT, data='{"hook": "order-select",', content_type="application/json")
    body = response.get_json()
    assert response.status_code == 400 and body["error"] == "invalid-json" and "line 1" in body["message"]


@pytest.mark.parametrize("mutate,path", [
    (lambda b: b.pop("hookInstance"), "$"),
    (lambda b: b["context"].pop("selections"), "$.context"),
    (lambda b: b["context"].update(selections=["not a reference"]), "$.context.selections[0]"),
    (lambda b: b["context"].update(patientId="../../etc/passwd"), "$.context.patientId"),
    (lambda b: b.update(fhirAuthorization={"access_token": "x", "token_type": "Bearer", "expires_in": 1,
                                           "scope": "s", "subject": "s"}), "$"),
    (lambda b: b["prefetch"].update(patient="Patient/p1"), "$.prefetch.patient"),
])
def test_schema_violations_name_the_path_and_rule(client, mutate, path):
    body = order_select_request()
    mutate(body)
    response = client.post(SELECT, json=body)
    error = response.get_json()
    assert response.status_code == 400 and error["error"] == "invalid-request"
    assert any(v["path"] == path for v in error["violations"]), error


def test_a_rule_broken_at_one_place_is_said_once(client):
    """The hook schemas are composed of parts that each require the same members: an empty body breaks
    that rule once, and is told so once."""
    response = client.post(SELECT, json={})
    error = response.get_json()
    assert response.status_code == 400 and error["error"] == "invalid-request"
    assert error["violations"] == [{"path": "$", "rule": "required: missing 'hook', 'hookInstance', 'context'"}]
    assert len({(v["path"], v["rule"]) for v in error["violations"]}) == len(error["violations"])


def test_body_over_the_limit_is_413(client, settings):
    padding = "x" * (settings.max_body_bytes + 10)
    response = client.post(SELECT, data=json.dumps({"pad": padding}), content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"] == "payload-too-large"


def test_deep_nesting_is_400(client):
    body = "[" * 200 + "]" * 200
    response = client.post(SELECT, data=body, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"] == "too-deep"


def test_patient_not_prefetched_without_fhir_server_is_412(client):
    body = order_select_request()
    del body["prefetch"]["patient"]
    response = client.post(SELECT, json=body)
    assert response.status_code == 412 and "Patient" in response.get_json()["message"]


def test_cors_preflight_and_headers(client):
    preflight = client.options(SELECT, headers={"Origin": "https://sandbox.cds-hooks.org",
                                                "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    discovery = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert discovery.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_restricted_origins(tmp_path):
    from service.app import create_app
    from service.settings import Settings
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/c.db",
                                       cors_origins=("https://ehr.example",)))
    client = app.test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    denied = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example"
    assert "Access-Control-Allow-Origin" not in denied.headers


def test_feedback_is_stored_before_200(client, store):
    card = client.post(SIGN, json=order_sign_request()).get_json()["cards"][0]
    feedback = {"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:15:00Z",
         "overrideReason": {"reason": {"code": "pa-in-progress", "system": "urn:x",
                                       "display": "Prior authorization already in progress"},
                            "userComment": "Submitted yesterday"}},
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:16:00Z"},
    ]}
    response = client.post(f"{SIGN}/feedback", json=feedback)
    assert response.status_code == 200 and response.get_json() == {"stored": 2}
    rows = store.query("SELECT card_uuid, outcome, override_code FROM feedback ORDER BY id")
    assert rows == [(card["uuid"], "overridden", "pa-in-progress"), (card["uuid"], "accepted", None)]


@pytest.mark.parametrize("feedback", [
    {}, {"feedback": []}, {"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]},
    {"feedback": [{"card": "x", "outcome": "accepted"}]},
    {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "yesterday"}]},
])
def test_malformed_feedback_is_400_and_nothing_is_stored(client, store, feedback):
    response = client.post(f"{SIGN}/feedback", json=feedback)
    assert response.status_code == 400
    assert store.query("SELECT COUNT(*) FROM feedback") == [(0,)]


def test_audit_row_without_patient_id_or_token(client, store):
    body = order_sign_request()
    client.post(SIGN, json=body)
    (row,) = store.query("SELECT hook_instance, service, patient_hash, policy, determination, card_uuids FROM audit")
    assert row[0] == body["hookInstance"] and row[1] == "mecasermin-order-sign"
    assert row[2] and row[2] != "p1" and len(row[2]) == 32
    assert row[3] == "premera-mecasermin" and row[4] == "meets-criteria"
    assert json.loads(row[5])


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_empty_values_in_the_echoed_draft_order_are_dropped(client):
    body = order_sign_request()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order.update(note=[], identifier=[{"system": "urn:ehr:orders", "value": ""}], priority=None)
    result = client.post(SIGN, json=body).get_json()   # CheckingClient rejects any empty value
    (action,) = result["systemActions"]
    assert "note" not in action["resource"] and "priority" not in action["resource"]
    assert action["resource"]["identifier"] == [{"system": "urn:ehr:orders"}]


def test_serve_refuses_unusable_auth_settings_before_starting(monkeypatch, capsys):
    from service.cli import main
    monkeypatch.setenv("CDS_AUTH_MODE", "required")
    monkeypatch.delenv("CDS_TRUSTED_ISSUERS_FILE", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "CDS_AUDIT_HASH_KEY" in capsys.readouterr().err
    monkeypatch.setenv("CDS_AUDIT_HASH_KEY", "0123456789abcdef")
    assert main(["serve", "--port", "1"]) == 2
    assert "CDS_FHIR_ALLOWLIST" in capsys.readouterr().err       # the default allows any local port
    monkeypatch.setenv("CDS_FHIR_ALLOWLIST", "https://fhir.example-health.org/r4")
    assert main(["serve", "--port", "1"]) == 2
    assert "CDS_TRUSTED_ISSUERS_FILE" in capsys.readouterr().err


def test_non_finite_numbers_are_400(client):
    body = json.dumps(order_select_request()).replace('"value": 0.8', '"value": 1e400', 1)
    response = client.post(SELECT, data=body, content_type="application/json")
    assert response.status_code == 400 and "out of range" in response.get_json()["message"]


def test_no_selection_behavior_without_suggestions(client):
    for card in client.post(SIGN, json=order_sign_request()).get_json()["cards"]:
        assert ("selectionBehavior" in card) == ("suggestions" in card)
