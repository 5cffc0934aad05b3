"""The FHIR resources behind one-click suggestions: orders for missing tests, a corrected dose,
a subcutaneous route, removal of the draft order. Each is valid R4 (checked in tests)."""
from __future__ import annotations

import copy
import uuid

from cards import text
from service.policy.tests_to_order import TESTS

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

SUBCUTANEOUS = {"coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}]}


def service_request(test: str, patient_reference: str, requester: dict | None, order_reference: str | None) -> dict:
    """A draft ServiceRequest for `test`; `order_reference`: the mecasermin order it documents, if any."""
    category_code, category_display = TESTS[test].category
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": category_code, "display": category_display}]}],
        "code": copy.deepcopy(TESTS[test].code),
        "subject": {"reference": patient_reference},
        "note": [{"text": "Needed to document mecasermin coverage criteria." if order_reference else
                  "Work-up of short stature for primary IGF-1 deficiency."}],
    }
    if order_reference:
        resource["reasonReference"] = [{"reference": order_reference}]
    if requester:
        resource["requester"] = requester
    return resource


def create_test_action(test: str, patient_reference: str, requester, order_reference: str | None) -> dict:
    return {"type": "create", "description": TESTS[test].order_title,
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
