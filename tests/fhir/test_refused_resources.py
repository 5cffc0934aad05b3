"""A resource of a read type that is not valid R4, or that carries a modifier extension, is refused — and
never silently: the checks of its scope become unknown or incomplete, naming what was refused
(service/fhir/refusals.py, docs/gathering.md "Refused resources")."""
from __future__ import annotations

import copy

from service.fhir.refusals import INVALID, MODIFIER, describe, element_path, modifier_extension_at
from service.fhir.resources import bundle_resources, screen
from service.policy.evaluate import evaluate
from service.policy.loader import load_policies
from service.record import build_record
from service.wording import word
from tests.conftest import TODAY
from tests.fhir.test_validation_corpus import _SETTINGS
from tests.fixtures import (SNOMED, condition, fhir_bundle, igf1_observation, laron_prefetch, mecasermin_order,
                            order_select_request, weight_observation)

_POLICIES = load_policies()
ORDER_SELECT = "/cds-services/mecasermin-order-select"
BRAIN_TUMOUR = ("C71.9", "Malignant neoplasm of brain, unspecified")


def decide(prefetch: dict):
    """The chart screened, recorded, decided and worded as the pipeline does."""
    candidates = [r for value in prefetch.values() for r in bundle_resources(value)]
    screened = screen(candidates)
    order = mecasermin_order()
    record = build_record(list(screened.resources) + [order], order, TODAY, rxnorm_codes=_SETTINGS.rxnorm_codes,
                          mg_per_ml=_POLICIES.label.dosing.concentration_mg_per_ml)
    decision = word(evaluate(record, _POLICIES, TODAY, default_policy=_SETTINGS.default_policy,
                             refused=screened.refused))
    return screened, decision


def with_resource(key: str, resource: dict) -> dict:
    prefetch = laron_prefetch()
    prefetch[key] = fhir_bundle([e["resource"] for e in prefetch[key]["entry"]] + [resource])
    return prefetch


def finding(decision, finding_id):
    return next((f for f in decision.label_findings if f.id == finding_id), None)


def malignancy(onset="2024-02-10"):
    resource = condition("c-onc", *BRAIN_TUMOUR)
    resource["onsetDateTime"] = onset
    return resource


# --- screening ------------------------------------------------------------------------------------

def test_a_refused_resource_is_named_with_the_element_and_its_scope():
    bad_weight = weight_observation("w2", "2026-11-18", 15.9)
    bad_weight["valueQuantity"]["value"] = "15,9"            # a decimal comma: not a JSON number
    screened = screen([malignancy("03/01/2024"), bad_weight, igf1_observation("igf1", "2026-09-02", 18.0)])
    assert [r["id"] for r in screened.resources] == ["igf1"]
    assert screened.invalid == 2
    onc, weight = screened.refused
    assert (onc.reference, onc.why, onc.element, onc.scopes) == ("Condition/c-onc", INVALID, "onsetDateTime",
                                                                  ("Condition",))
    assert (weight.reference, weight.element, weight.scopes) == ("Observation/w2", "valueQuantity.value",
                                                                 ("Observation:weight",))
    assert describe(screened.refused) == (
        "1 Condition could not be read: not valid FHIR R4 (Condition/c-onc, onsetDateTime)",
        "1 Observation could not be read: not valid FHIR R4 (Observation/w2, valueQuantity.value)")


def test_a_key_or_id_the_chart_made_up_is_never_repeated():
    bad_id = malignancy()
    bad_id["id"] = "c onc*"
    made_up = malignancy()
    made_up["[see](https://evil.example)"] = "x"
    first, second = screen([bad_id, made_up]).refused
    assert (first.reference, first.element) == (None, "id")
    assert (second.reference, second.element) == ("Condition/c-onc", None)
    assert describe([first, second]) == ("2 Conditions could not be read: not valid FHIR R4 (id; Condition/c-onc)",)
    assert element_path(("code", "coding", 0, "<b>", "x")) == "code.coding[0]"


def test_a_resource_sent_twice_is_read_in_the_form_that_can_be_read():
    valid = malignancy()
    screened = screen([malignancy("03/01/2024"), valid])
    assert screened.resources == (valid,) and screened.refused == () and screened.invalid == 0


def test_a_modifier_extension_anywhere_refuses_the_resource():
    allergy = {
        "resourceType": "AllergyIntolerance", "id": "al1",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": "418038007", "display": "Propensity to adverse reactions"}]},
        "patient": {"reference": "Patient/p1"},
        "reaction": [{"manifestation": [{"text": "urticaria"}],
                      "modifierExtension": [{"url": "http://example.org/fhir/reaction-refuted", "valueBoolean": True}]}],
    }
    assert modifier_extension_at(allergy) == "reaction[0].modifierExtension"
    (refused,) = screen([allergy]).refused
    assert (refused.why, refused.element, refused.scopes) == (MODIFIER, "reaction[0].modifierExtension",
                                                              ("AllergyIntolerance",))
    assert describe([refused, refused]) == (
        "2 AllergyIntolerances could not be read: each carries a modifier extension this service does not understand"
        " (AllergyIntolerance/al1, reaction[0].modifierExtension; AllergyIntolerance/al1,"
        " reaction[0].modifierExtension)",)
    contained = {"resourceType": "Medication", "id": "m", "code": {"text": "x"},
                 "modifierExtension": [{"url": "http://example.org/m", "valueCode": "x"}]}
    assert modifier_extension_at({"resourceType": "MedicationRequest", "contained": [contained]}) == (
        "contained[0].modifierExtension")


# --- the decision ---------------------------------------------------------------------------------

def test_a_malignancy_with_a_bad_onset_date_leaves_the_malignancy_check_incomplete_never_silent():
    _, readable = decide(with_resource("conditions", malignancy()))
    assert finding(readable, "malignancy") is not None and finding(readable, "malignancy").severity == "critical"

    screened, decision = decide(with_resource("conditions", malignancy("03/01/2024")))
    assert [r.reference for r in screened.refused] == ["Condition/c-onc"]
    incomplete = finding(decision, "label-checks-incomplete")
    assert incomplete is not None and incomplete.severity == "warning"
    assert "malignancy" in incomplete.why["checks"] and "closed-epiphyses" in incomplete.why["checks"]
    assert ("1 Condition could not be read: not valid FHIR R4 (Condition/c-onc, onsetDateTime)"
            in incomplete.message)
    assert "the checks for malignancy, closed epiphyses are incomplete" in incomplete.message
    # The coverage answer is left open too: a refused Condition may be an excluding cause.
    assert decision.determination == "documentation-needed" and decision.technical
    assert any("Condition/c-onc" in gap for gap in decision.technical_gaps)
    assert "could not be fetched or read" in decision.summary


def test_an_invalid_newer_igf1_makes_the_igf1_criterion_unknown():
    newer = igf1_observation("igf1-new", "2026-11-10", 160.0)
    newer["effectiveDateTime"] = "11/10/2026"
    _, decision = decide(with_resource("observations", newer))
    igf1 = decision.criterion("igf1")
    assert igf1.status == "unknown"
    assert "Observation/igf1-new, effectiveDateTime" in igf1.explanation
    assert decision.criterion("height").status == "met" and decision.criterion("gh-stimulation").status == "met"
    assert decision.criterion("diagnosis").status == "met"
    assert decision.determination == "documentation-needed"


def test_an_invalid_weight_leaves_igf1_decided_and_makes_the_dose_check_unknown():
    bad_weight = weight_observation("w2", "2026-11-18", 15.9)
    bad_weight["valueQuantity"]["value"] = "15,9"
    _, decision = decide(with_resource("observations", bad_weight))
    assert {c.id: c.status for c in decision.criteria} == {
        "diagnosis": "met", "height": "met", "igf1": "met", "gh-stimulation": "met", "bone-age": "met"}
    assert decision.determination == "meets-criteria" and not decision.technical   # coverage does not read weight
    assert decision.dose.status == "unknown"
    unchecked = finding(decision, "dose-unchecked")
    assert "a weight record could not be read (1 Observation could not be read: not valid FHIR R4 " \
           "(Observation/w2, valueQuantity.value))" in unchecked.message
    assert finding(decision, "label-checks-incomplete") is None


def test_a_refused_allergy_leaves_the_hypersensitivity_check_incomplete_not_the_coverage():
    allergy = {
        "resourceType": "AllergyIntolerance", "id": "al-meca",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system":
                                           "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                           "code": "confirmed"}]},
        "code": {"text": "mecasermin"}, "patient": {"reference": "Patient/p1"},
        "criticality": "high", "recordedDate": "18/06/2024",         # a day-first date: not an R4 dateTime
    }
    _, decision = decide(with_resource("allergies", allergy))
    incomplete = finding(decision, "label-checks-incomplete")
    assert incomplete.why["checks"] == ("hypersensitivity",)
    assert "AllergyIntolerance/al-meca, recordedDate" in incomplete.message
    assert decision.determination == "meets-criteria"


def test_a_modifier_extension_on_a_condition_is_refused_the_same_way():
    negated = condition("c-onc", *BRAIN_TUMOUR)
    negated["modifierExtension"] = [{"url": "http://example.org/fhir/condition-negated", "valueBoolean": True}]
    screened, decision = decide(with_resource("conditions", negated))
    assert screened.invalid == 1 and finding(decision, "malignancy") is None
    assert "carries a modifier extension this service does not understand (Condition/c-onc, modifierExtension)" \
        in finding(decision, "label-checks-incomplete").message


def test_a_refused_medication_request_leaves_the_exclusions_open():
    steroid = {"resourceType": "MedicationRequest", "id": "pred", "status": "active",      # no intent: not R4
               "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                         "code": "312617", "display": "prednisoLONE 5 MG Oral Tablet"}]},
               "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-05"}
    _, decision = decide(with_resource("medications", steroid))
    assert decision.determination == "documentation-needed"
    assert "interactions" in finding(decision, "label-checks-incomplete").why["checks"]


# --- the cards ------------------------------------------------------------------------------------

def test_the_cards_say_the_check_is_incomplete_and_escape_what_they_quote(client):
    onc = malignancy("03/01/2024")
    onc["evidence"] = [{"detail": [{"reference": "DocumentReference/d1"}], "foo*": 1}]
    prefetch = with_resource("conditions", onc)
    body = order_select_request(prefetch=copy.deepcopy(prefetch))
    cards = client.post(ORDER_SELECT, json=body).get_json()["cards"]
    text = " ".join(c["summary"] + " " + c.get("detail", "") for c in cards)
    assert "could not be read" in text and "Condition/c-onc" in text
    assert "foo*" not in text
    assert not any(c["summary"].startswith("Meets") for c in cards)
    assert any(c["indicator"] in ("warning", "critical") and "malignancy" in c.get("detail", "") for c in cards)



def test_a_refused_coverage_leaves_the_payer_unknown_and_the_answer_technical():
    bad = copy.deepcopy(laron_prefetch()["coverage"]["entry"][0]["resource"])
    bad["id"], bad["period"] = "cov2", {"start": "1st of January"}
    _, decision = decide(with_resource("coverage", bad))
    assert decision.determination == "documentation-needed" and decision.technical
    assert "1 Coverage could not be read: not valid FHIR R4 (Coverage/cov2, period.start)" in (
        decision.policy_choice.detail)


def test_a_check_that_names_only_a_type_is_told_of_every_refused_kind_of_it():
    from service.policy.context import Context
    bad_weight = weight_observation("w2", "2026-11-18", 15.9)
    bad_weight["valueQuantity"]["value"] = "15,9"
    ctx = Context(None, TODAY, None, _POLICIES.label, False, None, (), frozenset(), screen([bad_weight]).refused)
    assert ctx.gaps_for("Observation:igf1") == ()
    assert ctx.gaps_for("Observation") == ctx.gaps_for("Observation:weight") != ()


def test_a_primitive_extension_that_is_not_an_object_refuses_the_resource_never_a_500(client):
    # The R4B model's own validators raise AttributeError on a primitive's extension element (`_status`)
    # that is not an object: such a resource in any prefetch bundle was an HTTP 500.
    bad_coverage = copy.deepcopy(laron_prefetch()["coverage"]["entry"][0]["resource"])
    bad_coverage["id"], bad_coverage["_status"] = "cov2", "-0"
    bad_condition = malignancy()
    bad_condition["id"], bad_condition["_recordedDate"] = "c-onc2", ["x"]
    screened = screen([bad_coverage, bad_condition])
    assert list(screened.resources) == []
    assert screened.invalid == 2
    prefetch = with_resource("coverage", bad_coverage)
    prefetch["conditions"] = fhir_bundle([e["resource"] for e in prefetch["conditions"]["entry"]] + [bad_condition])
    response = client.post(ORDER_SELECT, json=order_select_request(prefetch=prefetch))
    assert response.status_code == 200
    text = " ".join(c["summary"] + " " + c.get("detail", "") for c in response.get_json()["cards"])
    assert "Coverage/cov2" in text and "could not be read" in text
