"""End-to-end through the HTTP layer: scenarios on both hooks, with full prefetch and with the data
fetched from a mocked FHIR server. Asserts indicators, summaries, suggestions (valid R4), the CRD
systemAction per the mapping and its invariants; every response is schema-checked by the client."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Callable

import pytest
import responses
from fhir.resources.R4B import get_fhir_model_class

from cards.coverage_information import EXTENSION_URL
from tests.fixtures import (condition, coverage, fhir_bundle,
                            laron_prefetch, mecasermin_order, order_select_request, weight_observation)

BASE = "http://127.0.0.1:9999/fhir"
SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}


@dataclass
class Scenario:
    name: str
    determination: str
    coverage_indicator: str
    covered: str | None                  # CRD `covered` code; None when no systemAction is expected
    change: Callable[[dict], None] = lambda prefetch: None
    order: dict = field(default_factory=mecasermin_order)
    safety: str | None = None            # indicator of the safety card, when one is expected
    dose: str | None = None              # indicator of the dose card, when one is expected
    tests: tuple[str, ...] = ()          # ServiceRequest LOINC/CPT codes suggested
    crd: tuple | None = None             # (pa-needed, doc-needed, doc-purpose) when not the usual for `covered`


def observations(prefetch):
    return prefetch["observations"]["entry"]


def drop_observations(*ids):
    def change(prefetch):
        prefetch["observations"]["entry"] = [e for e in observations(prefetch) if e["resource"]["id"] not in ids]
    return change


def add(key, *resources):
    def change(prefetch):
        prefetch[key]["entry"] += fhir_bundle(list(resources))["entry"]
    return change


def set_key(key, bundle):
    def change(prefetch):
        prefetch[key] = bundle
    return change


def both(*changes):
    def change(prefetch):
        for c in changes:
            c(prefetch)
    return change


def bone_age_report(conclusion):
    return {"resourceType": "DiagnosticReport", "id": "dr-ba", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85151-9", "display": "XR Bone age"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-02", "conclusion": conclusion}


def iv_order():
    return mecasermin_order(route_code="47625008", route="Intravenous route")


SCENARIOS = [
    Scenario("qualifies", "meets-criteria", "info", "covered"),
    Scenario("no bone age on file", "documentation-needed", "warning", "conditional",
             change=drop_observations("ba1"), tests=("85151-9",)),
    Scenario("no IGF-1 and no GH test", "documentation-needed", "warning", "conditional",
             change=drop_observations("igf1", "gh1", "gh2"), tests=("2484-4", "80428")),
    Scenario("idiopathic short stature", "does-not-meet", "warning", "not-covered",
             change=set_key("conditions", fhir_bundle([condition("c9", "R62.52", "Short stature (child)")])),
             order=mecasermin_order(reason=("R62.52", "Idiopathic short stature"))),
    Scenario("GH deficiency is investigational", "does-not-meet", "warning", "not-covered",
             change=set_key("conditions", fhir_bundle([condition("c9", "E23.0", "Hypopituitarism: growth hormone deficiency")])),
             order=mecasermin_order(reason=("E23.0", "Growth hormone deficiency"))),
    Scenario("history of malignancy", "meets-criteria", "info", "covered", safety="critical",
             change=add("conditions", condition("c8", "Z85.830", "Personal history of malignant neoplasm of bone",
                                                  status="resolved"))),
    # The report's bone age (15 years, newer than the 4.5 on file) fails the boys' limit of < 15 as well.
    # The contraindication leads: the coverage card is informational, moot until it is resolved.
    Scenario("closed epiphyses", "does-not-meet", "info", "not-covered", safety="critical",
             change=add("reports", bone_age_report("Bone age 15 years. The epiphyses are fused."))),
    Scenario("intravenous route", "meets-criteria", "info", "covered", safety="critical", order=iv_order()),
    Scenario("overdose", "meets-criteria", "info", "covered", dose="critical",
             order=mecasermin_order(dose_mg=3.0)),
    Scenario("once daily", "meets-criteria", "info", "covered", dose="warning",
             order=mecasermin_order(per_day=1)),
    Scenario("no recent weight", "meets-criteria", "info", "covered", dose="warning",
             change=both(drop_observations("w1"), add("observations", weight_observation("w0", "2025-01-10", 13.9)))),
    Scenario("no coverage on file: label policy, no systemAction", "meets-criteria", "info", None,
             change=set_key("coverage", fhir_bundle([]))),
    Scenario("plan without a policy file: label checked, coverage conditional", "meets-criteria", "warning",
             "conditional", change=set_key("coverage", fhir_bundle([coverage(payer="Regence BlueShield of Idaho")])),
             crd=(None, None, None)),
    Scenario("legacy E34.3", "documentation-needed", "warning", "conditional",
             change=set_key("conditions", fhir_bundle([condition("c1", "E34.3", "Short stature due to endocrine disorder")])),
             order=mecasermin_order(reason=("E34.3", "Short stature due to endocrine disorder"))),
]


def request_for(scenario: Scenario, hook: str, mode: str) -> tuple[dict, dict]:
    prefetch = laron_prefetch()
    scenario.change(prefetch)
    for bundle in prefetch.values():
        if bundle.get("resourceType") == "Bundle":   # as the EHR's search would count them
            bundle["total"] = len(bundle["entry"])
    body = order_select_request(prefetch=copy.deepcopy(prefetch), order=copy.deepcopy(scenario.order), hook=hook)
    if mode == "fetch":
        del body["prefetch"]
        body["fhirServer"] = BASE
        body["fhirAuthorization"] = {"access_token": "opaque-token-123", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "mecasermin-cds"}
    return body, prefetch


def mock_fhir(prefetch: dict) -> None:
    routes = {"Patient/p1": prefetch["patient"], "Condition?": prefetch["conditions"],
              "Observation?": prefetch["observations"], "MedicationRequest?": prefetch["medications"],
              "MedicationStatement?": prefetch["medicationstatements"],
              "MedicationDispense?": prefetch["medicationdispenses"],
              "MedicationAdministration?": prefetch["medicationadministrations"],
              "AllergyIntolerance?": prefetch["allergies"], "Coverage?": prefetch["coverage"],
              "DiagnosticReport?": prefetch["reports"]}
    for path, body in routes.items():
        responses.add(responses.GET, re.compile(re.escape(f"{BASE}/{path}") + ".*"), json=body)


def card_of(cards, topic):
    found = [c for c in cards if c["source"]["topic"]["code"] == topic]
    assert len(found) <= 1
    return found[0] if found else None


def check_crd(extension: dict, expected_covered: str, expected_codes: tuple | None = None):
    parts = {}
    for part in extension["extension"]:
        parts.setdefault(part["url"], []).append(part)
    codes = {url: p[0].get("valueCode") for url, p in parts.items()}
    assert codes["covered"] == expected_covered
    for required in ("coverage", "covered", "date", "coverage-assertion-id", "billingCode"):
        assert len(parts.get(required, [])) == 1, required
    assert parts["billingCode"][0]["valueCoding"]["code"] == "J2170"
    if expected_covered == "not-covered":
        assert "pa-needed" not in parts
    if expected_covered == "conditional":
        assert codes["info-needed"] == "OTH"
    if "doc-purpose" in parts or codes.get("info-needed") == "OTH" or expected_covered == "indeterminate":
        assert "reason" in parts
    expected = {"covered": ("auth-needed", "clinical", "withpa"), "conditional": ("auth-needed", "clinical", "withpa"),
                "not-covered": (None, None, None), "indeterminate": (None, None, None)}[expected_covered]
    assert (codes.get("pa-needed"), codes.get("doc-needed"), codes.get("doc-purpose")) == (expected_codes or expected)


def assert_valid_r4(resource: dict):
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.parametrize("mode", ["prefetch", "fetch"])
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@responses.activate
def test_scenario(client, store, scenario, hook, mode):
    body, prefetch = request_for(scenario, hook, mode)
    if mode == "fetch":
        mock_fhir(prefetch)
    response = client.post(SERVICES[hook], json=body)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    cards = result["cards"]

    coverage_card = card_of(cards, "coverage-info")
    assert coverage_card["indicator"] == scenario.coverage_indicator
    assert len(coverage_card["summary"]) < 140
    assert all(len(c["summary"]) < 140 for c in cards)
    assert all("uuid" in c for c in cards)

    safety = card_of(cards, "contraindication")
    assert (safety["indicator"] if safety else None) == scenario.safety
    dose = card_of(cards, "off-guideline")
    assert (dose["indicator"] if dose else None) == scenario.dose
    monitoring = card_of(cards, "guideline")
    # No "once treatment starts" card while a critical safety finding stops treatment (cards/DESIGN.md).
    assert (monitoring is not None) == (hook == "order-sign" and scenario.safety != "critical")

    suggested_codes = {coding["code"] for s in coverage_card.get("suggestions", []) for a in s["actions"]
                       for coding in a["resource"]["code"]["coding"]}
    assert set(scenario.tests) <= suggested_codes
    for card in cards:
        for suggestion in card.get("suggestions", []):
            assert suggestion["uuid"]
            for action in suggestion["actions"]:
                if "resource" in action:
                    assert_valid_r4(action["resource"])

    actions = result.get("systemActions", [])
    if scenario.covered is None:
        assert actions == []
    else:
        (action,) = actions
        assert action["type"] == "update" and action["resource"]["id"] == scenario.order["id"]
        assert_valid_r4(action["resource"])
        (extension,) = [e for e in action["resource"]["extension"] if e["url"] == EXTENSION_URL]
        check_crd(extension, scenario.covered, scenario.crd)

    (row,) = store.query("SELECT determination, card_uuids FROM audit")
    assert row[0] == scenario.determination
    if mode == "fetch":
        assert all(call.request.headers["Authorization"] == "Bearer opaque-token-123" for call in responses.calls)


@responses.activate
def test_fhir_failure_gives_indeterminate_technical(client):
    body, prefetch = request_for(SCENARIOS[0], "order-sign", "fetch")
    body["prefetch"] = {"patient": prefetch["patient"], "coverage": prefetch["coverage"]}
    responses.add(responses.GET, re.compile(re.escape(BASE) + r"/(Observation|Condition|Medication[A-Za-z]+|"
                                            r"AllergyIntolerance|DiagnosticReport)\?.*"), status=503)
    result = client.post(SERVICES["order-sign"], json=body).get_json()
    (action,) = result["systemActions"]
    (extension,) = [e for e in action["resource"]["extension"] if e["url"] == EXTENSION_URL]
    check_crd(extension, "indeterminate")
    reason = next(p for p in extension["extension"] if p["url"] == "reason")["valueCodeableConcept"]
    assert reason["coding"][0]["code"] == "technical" and "could not be read from the FHIR server" in reason["text"]
    assert "503" not in reason["text"], "how the network failed is for the logs, not the card"
    coverage_card = card_of(result["cards"], "coverage-info")
    assert coverage_card["indicator"] == "warning" and "not determined" in coverage_card["summary"]


def test_crd_configuration_toggles_and_max_cards(client):
    body, _ = request_for(Scenario("", "", "", None, order=mecasermin_order(dose_mg=3.0)), "order-sign", "prefetch")
    body["extension"] = {"davinci-crd.configuration": {"monitoring": False, "max-cards": 1, "unknown-option": True}}
    cards = client.post(SERVICES["order-sign"], json=body).get_json()["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "critical"
    body["extension"] = {"davinci-crd.configuration": {"coverage": False}}
    result = client.post(SERVICES["order-sign"], json=body).get_json()
    assert card_of(result["cards"], "coverage-info") is None and "systemActions" not in result


def test_government_programme_copay_note(client):
    """Manufacturer support is access detail for the SMART app and the letter (service.wording.support),
    not card material: the card points to the app."""
    medicaid = coverage(payer="Washington Apple Health (Medicaid)")
    body, _ = request_for(Scenario("", "", "", None, change=set_key("coverage", fhir_bundle([medicaid]))),
                          "order-sign", "prefetch")
    detail = card_of(client.post(SERVICES["order-sign"], json=body).get_json()["cards"], "coverage-info")["detail"]
    assert "copay" not in detail and "review app" in detail


def test_dose_card_proposes_corrected_dose_in_mg_and_ml(client):
    body, _ = request_for(Scenario("", "", "", None, order=mecasermin_order(dose_mg=3.0)), "order-sign", "prefetch")
    dose = card_of(client.post(SERVICES["order-sign"], json=body).get_json()["cards"], "off-guideline")
    # A new start: 15.2 kg × 0.08 mg/kg (top of the starting range) = 1.216 mg → rounded down to 1.2 mg = 0.12 mL
    (suggestion,) = dose["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    dose_quantity = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose_quantity == {"value": 1.2, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert "0.12 mL" in suggestion["label"]
    assert dose["summary"] == "Mecasermin dose 0.197 mg/kg exceeds the 0.12 mg/kg per dose maximum"


def test_intravenous_route_suggests_subcutaneous_and_removal(client):
    body, _ = request_for(Scenario("", "", "", None, order=iv_order()), "order-select", "prefetch")
    safety = card_of(client.post(SERVICES["order-select"], json=body).get_json()["cards"], "contraindication")
    kinds = [(a["type"], a.get("resourceId")) for s in safety["suggestions"] for a in s["actions"]]
    assert ("delete", ["MedicationRequest/mr-1"]) in kinds
    update = next(a for s in safety["suggestions"] for a in s["actions"] if a["type"] == "update")
    assert update["resource"]["dosageInstruction"][0]["route"]["coding"][0]["code"] == "34206005"
    assert all(r["display"] for r in safety["overrideReasons"])


def test_dose_in_pills_asks_for_mg_not_for_a_weight(client):
    # The public sandbox's Rx View sends "1 {pill}" whatever the drug.
    order = mecasermin_order()
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
        "value": 1, "unit": "{pill}", "system": "http://unitsofmeasure.org", "code": "{pill}"}
    body, _ = request_for(Scenario("", "", "", None, order=order), "order-select", "prefetch")
    dose = card_of(client.post(SERVICES["order-select"], json=body).get_json()["cards"], "off-guideline")
    assert dose["indicator"] == "warning" and "could not be checked" in dose["summary"]
    assert "weight" not in dose["summary"] and "not stated in mg" in dose["summary"]   # the weight is on file
    assert "State the dose in mg" in dose["detail"] and "Record a current weight" not in dose["detail"]
    assert "suggestions" not in dose
    assert dose["detail"].count("cannot be checked") == 1


def test_route_and_dose_suggestions_carry_each_others_fix(client):
    body, _ = request_for(Scenario("", "", "", None, order=mecasermin_order(dose_mg=3.0, route_code="47625008",
                                                                           route="Intravenous route")),
                          "order-sign", "prefetch")
    cards = client.post(SERVICES["order-sign"], json=body).get_json()["cards"]
    updates = [a["resource"] for c in cards for s in c.get("suggestions", []) for a in s["actions"]
               if a["type"] == "update"]
    assert len(updates) == 2
    for resource in updates:
        dosage = resource["dosageInstruction"][0]
        assert dosage["route"]["coding"][0]["code"] == "34206005"
        assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1.2


def test_three_times_daily_above_the_daily_maximum_is_a_critical_dose_card(client):
    # 0.1 mg/kg three times a day = 0.3 mg/kg/day, above 2 × 0.12 mg/kg.
    body, _ = request_for(Scenario("", "", "", None, order=mecasermin_order(dose_mg=1.5, per_day=3)),
                          "order-sign", "prefetch")
    dose = card_of(client.post(SERVICES["order-sign"], json=body).get_json()["cards"], "off-guideline")
    assert dose["indicator"] == "critical"
    # The headline names the limit that made it critical, not the starting range.
    assert dose["summary"] == "Mecasermin 0.296 mg/kg per day exceeds the 0.24 mg/kg per day maximum"
    (suggestion,) = dose["suggestions"]
    (dosage,) = suggestion["actions"][0]["resource"]["dosageInstruction"]
    assert dosage["timing"] == {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1.2      # 0.08 mg/kg × 15.2 kg, rounded down


def test_safety_summary_names_each_contraindication_by_title(client):
    body, _ = request_for(Scenario("", "", "", None, order=iv_order(), change=add(
        "conditions", condition("c8", "Z85.830", "Personal history of malignant neoplasm of bone", status="resolved"))),
        "order-select", "prefetch")
    safety = card_of(client.post(SERVICES["order-select"], json=body).get_json()["cards"], "contraindication")
    assert safety["summary"].startswith("Mecasermin contraindicated: ")
    assert "malignan" in safety["summary"].lower() and "intravenous" in safety["summary"].lower()
    assert len(safety["summary"]) < 140
