"""The FHIR resources behind one-click suggestions: orders for missing tests, a corrected dose,
a subcutaneous route, removal of the draft order. Each is valid R4 (checked in tests)."""
from __future__ import annotations

import copy
import uuid

from cards import text

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

# The code a ServiceRequest carries for each missing test; LOINC codes usable as orders.
TEST_CODES = {
    "igf1": {"coding": [{"system": LOINC, "code": "2484-4",
                         "display": "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma"}]},
    "gh-stimulation": {"coding": [{"system": CPT, "code": "80428",
                                   "display": "Growth hormone stimulation panel"}],
                       "text": "Growth hormone stimulation test (e.g. arginine or clonidine)"},
    "bone-age": {"coding": [{"system": LOINC, "code": "85151-9", "display": "XR Bone age"},
                            {"system": CPT, "code": "77072", "display": "Bone age studies"}]},
    "height": {"coding": [{"system": LOINC, "code": "8302-2", "display": "Body height"}]},
    "weight": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
}
TEST_CATEGORY = {
    "igf1": ("108252007", "Laboratory procedure"), "gh-stimulation": ("108252007", "Laboratory procedure"),
    "bone-age": ("363679005", "Imaging"), "height": ("225398001", "Assessment"),
    "weight": ("225398001", "Assessment"),
}
SUBCUTANEOUS = {"coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}]}


def service_request(test: str, patient_reference: str, requester: dict | None, order_reference: str) -> dict:
    category_code, category_display = TEST_CATEGORY[test]
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": category_code, "display": category_display}]}],
        "code": TEST_CODES[test],
        "subject": {"reference": patient_reference},
        "reasonReference": [{"reference": order_reference}],
        "note": [{"text": "Needed to document mecasermin coverage criteria."}],
    }
    if requester:
        resource["requester"] = requester
    return resource


def create_test_action(test: str, patient_reference: str, requester, order_reference: str) -> dict:
    return {"type": "create", "description": text.MISSING_TEST_TITLES[test],
            "resource": service_request(test, patient_reference, requester, order_reference)}


def with_dose(order: dict, proposed) -> dict:
    """The draft order with every dosage set to the proposed mg dose at the label's frequency (twice
    daily); the timing is replaced whole, so that a TID code or q8h repeat does not survive the fix."""
    updated = copy.deepcopy(order)
    dosages = updated.get("dosageInstruction") or [{}]
    for dosage in dosages:
        dosage["text"] = text.proposed_dose_text(proposed)
        dosage["timing"] = {"repeat": {"frequency": proposed.per_day, "period": 1, "periodUnit": "d"}}
        dosage["doseAndRate"] = [{"doseQuantity": {"value": proposed.dose_mg, "unit": "mg", "system": UCUM,
                                                   "code": "mg"}}]
    updated["dosageInstruction"] = dosages
    return updated


def with_subcutaneous_route(order: dict) -> dict:
    updated = copy.deepcopy(order)
    for dosage in updated.get("dosageInstruction") or ():
        dosage["route"] = copy.deepcopy(SUBCUTANEOUS)
    return updated


def corrected_order(order: dict, decision) -> dict:
    """The draft order with every one-click fix applied (route and dose), so that accepting the
    route suggestion and the dose suggestion, in either order, never undoes the other."""
    fixed = order
    if any(f.id == "intravenous-route" for f in decision.label_findings):
        fixed = with_subcutaneous_route(fixed)
    if decision.dose is not None and decision.dose.proposed is not None:
        fixed = with_dose(fixed, decision.dose.proposed)
    return fixed


def delete_action(order_reference: str) -> dict:
    return {"type": "delete", "description": "Remove the draft mecasermin order", "resourceId": [order_reference]}


def suggestion(label: str, actions: list[dict], recommended: bool | None = None) -> dict:
    entry = {"label": label, "uuid": str(uuid.uuid4()), "actions": actions}
    if recommended is not None:
        entry["isRecommended"] = recommended
    return entry
