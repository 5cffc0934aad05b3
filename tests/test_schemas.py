"""The project's own CDS Hooks 2.0.1 JSON Schemas: valid and invalid examples, sandbox quirks."""
import pytest

from service.validation import violations
from tests.fixtures import order_select_request, order_sign_request


def paths(schema, instance, prefix="$"):
    return [v.path for v in violations(schema, instance, prefix)]


def test_valid_requests_pass():
    for body in (order_select_request(), order_sign_request()):
        assert paths("cds-request.schema.json", body) == []
    assert paths("order-select-context.schema.json", order_select_request()["context"]) == []
    assert paths("order-sign-context.schema.json", order_sign_request()["context"]) == []


def test_sandbox_draft_orders_without_bundle_type_pass():
    context = order_select_request()["context"]
    del context["draftOrders"]["type"]
    assert paths("order-select-context.schema.json", context) == []


@pytest.mark.parametrize("schema,change,where", [
    ("cds-request.schema.json", lambda b: b.update(hook=""), "$.hook"),
    ("cds-request.schema.json", lambda b: b.update(fhirServer="ftp://ehr.example/fhir"), "$.fhirServer"),
    ("cds-request.schema.json", lambda b: b.update(prefetch={"patient": "Patient/1"}), "$.prefetch.patient"),
    ("cds-request.schema.json", lambda b: b.update(fhirServer="https://ehr.example/fhir", fhirAuthorization={
        "access_token": "t", "token_type": "MAC", "expires_in": 1, "scope": "s", "subject": "s"}),
     "$.fhirAuthorization.token_type"),
])
def test_invalid_requests_name_the_path(schema, change, where):
    body = order_select_request()
    change(body)
    assert where in paths(schema, body)


@pytest.mark.parametrize("change,where", [
    (lambda c: c.update(userId="Patient/p1"), "$.userId"),
    (lambda c: c.update(selections=[]), "$.selections"),
    (lambda c: c["draftOrders"].update(resourceType="List"), "$.draftOrders.resourceType"),
    (lambda c: c["draftOrders"]["entry"].append({"fullUrl": "x"}), "$.draftOrders.entry[1]"),
])
def test_invalid_order_select_contexts(change, where):
    context = order_select_request()["context"]
    change(context)
    assert where in paths("order-select-context.schema.json", context)


def card(**extra):
    body = {"uuid": "0f8fad5b-d9cb-469f-a165-70867728950e", "summary": "Mecasermin initial: meets criteria",
            "indicator": "info", "source": {"label": "Plan policy"}}
    body.update(extra)
    return body


@pytest.mark.parametrize("response,valid", [
    ({"cards": []}, True),
    ({"cards": [card()]}, True),
    ({"cards": [card(summary="x" * 140)]}, False),
    ({"cards": [card(indicator="hard-stop")]}, False),
    ({"cards": [card(suggestions=[{"label": "Order IGF-1"}])]}, False),        # selectionBehavior missing
    ({"cards": [card(suggestions=[{"label": "Remove", "actions": [{"type": "delete", "description": "d"}]}],
                     selectionBehavior="at-most-one")]}, False),               # delete needs resourceId
    ({"cards": [card(links=[{"label": "app", "url": "/smart/launch", "type": "smart"}])]}, False),
    ({"cards": [card(overrideReasons=[{"code": "x"}])]}, False),               # a Coding needs display
    ({"cards": [], "systemActions": []}, False),
    ({"cards": [card(extra_field=1)]}, False),
])
def test_response_schema(response, valid):
    assert (violations("cds-response.schema.json", response) == []) is valid


def test_feedback_schema():
    good = {"feedback": [{"card": "c1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}],
                          "outcomeTimestamp": "2026-11-21T10:00:00Z"}]}
    assert violations("feedback.schema.json", good) == []
    bad = {"feedback": [{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:00:00Z",
                         "overrideReason": {"reason": {"code": "x"}}}]}
    assert violations("feedback.schema.json", bad)


def test_a_400_never_echoes_the_offending_value():
    body = order_select_request()
    body.update(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization="Bearer SECRET-TOKEN-abc")
    rules = " ".join(v.rule for v in violations("cds-request.schema.json", body))
    assert "SECRET" not in rules and "must be of type" in rules


def test_at_most_twenty_violations_are_reported():
    context = order_select_request()["context"]
    context["selections"] = ["not a reference"] * 100_000
    assert len(violations("order-select-context.schema.json", context)) == 20


@pytest.mark.parametrize("patient_id", ["..", "."])
def test_dot_ids_are_rejected(patient_id):
    context = order_select_request()["context"]
    context["patientId"] = patient_id
    assert "$.patientId" in paths("order-select-context.schema.json", context)


def test_draft_orders_need_an_id():
    context = order_sign_request()["context"]
    del context["draftOrders"]["entry"][0]["resource"]["id"]
    assert "$.draftOrders.entry[0].resource" in paths("order-sign-context.schema.json", context)
