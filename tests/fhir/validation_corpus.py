"""Resources as real servers and attackers send them, each with the verdict R4 validation gives.

The verdicts were recorded from full validation with the fhir.resources R4B models (before the fast
check of `service/fhir/r4_shape.py` existed) and pin what a resource must be to be read: True is
accepted, False is skipped and counted as invalid. Each case changes one thing in a resource of the
Laron chart (tests/fixtures.py) or adds one resource (`chart_with` puts it in its place), so that
tests/fhir/test_validation_corpus.py can also pin what the record and the decision make of it.
"""
from __future__ import annotations

import copy
from typing import Any

from tests.fixtures import (LOINC, PATIENT_ID, UCUM, bone_age_observation, condition, coverage,
                            height_observation, igf1_observation, mecasermin_order, patient_resource)

BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
DATA_ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}
Case = tuple[str, dict, bool]


def _with(base: dict, **changes: Any) -> dict:
    """A copy of `base`; a value of `...` removes the element."""
    resource = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def _igf1(**changes: Any) -> dict:
    return _with(igf1_observation("igf1", "2026-09-02", 18.0), **changes)


def _height(**changes: Any) -> dict:
    return _with(height_observation("h3", "2026-10-20", 100.4), **changes)


def _quantity(value: Any, unit: Any = "ng/mL", **extra: Any) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit, **extra}


def _loinc(code: str, display: Any = "Insulin-like growth factor-I") -> dict:
    return {"coding": [{"system": LOINC, "code": code, "display": display}]}


def _statement(**changes: Any) -> dict:
    return _with({
        "resourceType": "MedicationStatement", "id": "ms1", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "1648213", "display": "somatropin 5 MG/ML"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectivePeriod": {"start": "2025-01-10"},
    }, **changes)


def _allergy(**changes: Any) -> dict:
    return _with({
        "resourceType": "AllergyIntolerance", "id": "al1",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://fdasis.nlm.nih.gov", "code": "LKG8494WBH", "display": "Benzyl alcohol"}]},
        "patient": {"reference": f"Patient/{PATIENT_ID}"}, "recordedDate": "2024-02-01",
    }, **changes)


def _report(**changes: Any) -> dict:
    return _with({
        "resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "37362-1", "display": "XR Bone age"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": "2026-08-20",
        "conclusion": "Bone age 4 years 6 months (Greulich and Pyle). Growth plates open.",
    }, **changes)


def _chart_order(**changes: Any) -> dict:
    """A mecasermin order already in the chart (a MedicationRequest of the medications search)."""
    return _with(mecasermin_order("mr-old"), **{"status": "active", "authoredOn": "2025-06-01", **changes})


def _condition(**changes: Any) -> dict:
    return _with(condition("c1", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"), **changes)


def _coverage(**changes: Any) -> dict:
    return _with(coverage(), **changes)


def _patient(**changes: Any) -> dict:
    return _with(patient_resource(), **changes)


CORPUS: list[Case] = [
    # --- Observation: values --------------------------------------------------------------------
    ("observation as the fixtures write it", _igf1(), True),
    ("value an integer", _igf1(valueQuantity=_quantity(18)), True),
    ("value a number written as a string", _igf1(valueQuantity=_quantity("18.0")), True),
    ("value true", _igf1(valueQuantity=_quantity(True)), False),
    ("value 1e308", _igf1(valueQuantity=_quantity(1e308)), True),
    ("value NaN", _igf1(valueQuantity=_quantity(float("nan"))), False),
    ("unit a number", _igf1(valueQuantity=_quantity(18.0, unit=5)), False),
    ("comparator outside the value set", _igf1(valueQuantity=_quantity(18.0, comparator="~")), True),
    ("comparator <", _igf1(valueQuantity=_quantity(18.0, comparator="<")), True),
    ("unit code empty", _igf1(valueQuantity={"value": 18.0, "code": ""}), False),
    ("unit code with a leading space", _igf1(valueQuantity={"value": 18.0, "code": " ng/mL"}), False),
    ("valueQuantity and valueString both", _igf1(valueString="18 ng/mL"), False),
    ("valueString instead of a quantity", _igf1(valueQuantity=..., valueString="<25 ng/mL"), True),
    ("valueInteger a decimal", _igf1(valueQuantity=..., valueInteger=1.5), False),
    ("valueInteger a string", _igf1(valueQuantity=..., valueInteger="15"), True),
    ("valueInteger beyond 32 bits", _igf1(valueQuantity=..., valueInteger=2 ** 31), False),
    ("valueBoolean a string", _igf1(valueQuantity=..., valueBoolean="true"), True),
    ("valueBoolean 1", _igf1(valueQuantity=..., valueBoolean=1), True),
    ("value null", _igf1(valueQuantity=None), True),
    ("reference range bound a string", _igf1(referenceRange=[{"low": {"value": "52"}, "high": {"value": 297}}]), True),
    ("reference range a single object", _igf1(referenceRange={"low": {"value": 52}, "high": {"value": 297}}), False),
    ("component without a code", _igf1(component=[{"valueQuantity": {"value": 1}}]), False),
    ("interpretation a single object", _igf1(interpretation={"text": "low"}), False),
    # --- Observation: status, code, dates ---------------------------------------------------------
    ("status outside the value set", _igf1(status="done"), True),
    ("status a number", _igf1(status=1), False),
    ("status missing", _igf1(status=...), False),
    ("status missing, explained by a data-absent extension", _igf1(status=..., _status=DATA_ABSENT), True),
    ("code missing", _igf1(code=...), False),
    ("coding a single object", _igf1(code={"coding": {"system": LOINC, "code": "2484-4"}}), False),
    ("coding system with a space", _igf1(code={"coding": [{"system": "http://lo inc.org", "code": "2484-4"}]}), True),
    ("code with an inner space", _igf1(code={"coding": [{"system": LOINC, "code": "2484 4"}]}), True),
    ("code text empty", _igf1(code={**_loinc("2484-4"), "text": ""}), False),
    ("code text only spaces", _igf1(code={**_loinc("2484-4"), "text": "   "}), True),
    ("display with a NUL character", _igf1(code=_loinc("2484-4", "IGF\x00-1")), True),
    ("display of two megabytes", _igf1(code=_loinc("2484-4", "I" * 2_000_000)), True),
    ("display a number", _igf1(code=_loinc("2484-4", 5)), False),
    ("display with a lone surrogate (a fetched resource)", _igf1(code=_loinc("2484-4", "IGF\ud800-1")), False),
    ("display in Greek", _igf1(code=_loinc("2484-4", "\u03b9\u03bd\u03c3\u03bf\u03c5\u03bb\u03af\u03bd\u03b7")), True),
    ("narrative div empty", _igf1(text={"status": "generated", "div": ""}), True),
    ("date with month 13", _igf1(effectiveDateTime="2026-13-01"), False),
    ("date 30 February", _igf1(effectiveDateTime="2026-02-30"), False),
    ("date and time without a zone", _igf1(effectiveDateTime="2026-09-02T10:00:00"), False),
    ("date and time with a zone", _igf1(effectiveDateTime="2026-09-02T10:00:00-05:00"), True),
    ("date and time, zone +15:00", _igf1(effectiveDateTime="2026-09-02T10:00:00+15:00"), False),
    ("date and time at 24:00", _igf1(effectiveDateTime="2026-09-02T24:00:00Z"), False),
    ("date a year only", _igf1(effectiveDateTime="2026"), True),
    ("date in words", _igf1(effectiveDateTime="last Tuesday"), False),
    ("date as US text", _igf1(effectiveDateTime="09/02/2026"), False),
    ("date a number", _igf1(effectiveDateTime=20260902), True),
    ("date and a period both", _igf1(effectivePeriod={"start": "2026-09-01"}), False),
    ("issued a date without a time", _igf1(issued="2026-09-03"), False),
    ("issued an instant", _igf1(issued="2026-09-03T08:00:00Z"), True),
    ("date with a primitive extension", _igf1(_effectiveDateTime={"extension": [{"url": "http://x.org/e",
                                                                                  "valueString": "y"}]}), True),
    # --- Observation: structure -------------------------------------------------------------------
    ("unknown element", _igf1(flavour="salty"), False),
    ("primitive extension of an unknown element", _igf1(_flavour={"id": "x"}), False),
    ("extension with a bad value", _igf1(extension=[{"url": "http://x.org/e", "valueDate": "soon"}]), False),
    ("extension without a url", _igf1(extension=[{"valueString": "x"}]), False),
    ("extension nested five deep", _igf1(extension=[{"url": "http://x.org/a", "extension": [
        {"url": "b", "extension": [{"url": "c", "extension": [{"url": "d", "extension": [
            {"url": "e", "valueCode": "x"}]}]}]}]}]), True),
    ("modifier extension", _igf1(modifierExtension=[{"url": "http://x.org/m", "valueBoolean": True}]), True),
    ("subject a string", _igf1(subject=f"Patient/{PATIENT_ID}"), False),
    ("subject reference a number", _igf1(subject={"reference": 5}), False),
    ("id with a space", _igf1(id="igf 1"), False),
    ("id of 70 characters", _igf1(id="i" * 70), True),
    ("contained resource invalid", _igf1(contained=[{"resourceType": "Medication", "code": 5}]), False),
    ("contained resource valid", _igf1(contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "x"}}]),
     True),
    ("contained resource of an unknown type", _igf1(contained=[{"resourceType": "Potion", "id": "p"}]), False),
    ("category an empty list", _igf1(category=[]), True),
    ("method an empty object", _igf1(method={}), True),
    ("null inside a list", _igf1(category=[None]), False),
    ("meta lastUpdated in words", _igf1(meta={"lastUpdated": "yesterday"}), False),
    ("meta with a profile", _igf1(meta={"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"],
                                        "lastUpdated": "2026-09-02T10:00:00.123Z"}), True),
    ("note text a number", _igf1(note=[{"text": 5}]), False),
    ("narrative", _igf1(text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">IGF-1 18</div>"}),
     True),
    ("resourceType misspelt", _igf1(resourceType="Observatio"), False),
    ("height in the fixtures' shape", _height(), True),
    ("height of 40 cm written as '40'", _height(valueQuantity=_quantity("40", "cm")), True),
    ("bone age valueString", _with(bone_age_observation("ba1", "2026-08-20", 4.5), valueQuantity=...,
                                   valueString="4 years 6 months"), True),
    # --- Patient ------------------------------------------------------------------------------------
    ("patient as the fixtures write it", _patient(), True),
    ("birth date 2020-5-14", _patient(birthDate="2020-5-14"), False),
    ("birth date with a time", _patient(birthDate="2020-05-14T00:00:00Z"), False),
    ("birth date missing, data-absent extension", _patient(birthDate=..., _birthDate=DATA_ABSENT), True),
    ("gender outside the value set", _patient(gender="boy"), True),
    ("name a string", _patient(name="Tobi Okafor"), False),
    ("birth-sex extension F F", _patient(extension=[{"url": BIRTHSEX, "valueCode": "F F"}]), True),
    ("birth-sex extension with two values", _patient(extension=[{"url": BIRTHSEX, "valueCode": "F",
                                                                 "valueString": "female"}]), False),
    ("telecom value a number", _patient(telecom=[{"system": "phone", "value": 5}]), False),
    ("deceased twice", _patient(deceasedBoolean=False, deceasedDateTime="2020-01-01"), False),
    ("photo data that is not base64", _patient(photo=[{"contentType": "image/png", "data": "not base64!"}]), False),
    ("address with a period", _patient(address=[{"line": ["1 Main St"], "city": "Seattle",
                                                 "period": {"start": "2020-05-14"}}]), True),
    # --- Condition ----------------------------------------------------------------------------------
    ("condition as the fixtures write it", _condition(), True),
    ("onset as US text", _condition(onsetDateTime="03/01/2023"), False),
    ("clinical status a string", _condition(clinicalStatus="active"), False),
    ("subject missing", _condition(subject=...), False),
    ("onset a period", _condition(onsetDateTime=..., onsetPeriod={"start": "2023-03"}), True),
    # --- medications --------------------------------------------------------------------------------
    ("mecasermin order on file", _chart_order(), True),
    ("order without an intent", _chart_order(intent=...), False),
    ("order naming no medication", _chart_order(medicationCodeableConcept=...), False),
    ("order naming two medications", _chart_order(medicationReference={"reference": "Medication/m1"}), False),
    ("order dose a string", _chart_order(dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": "0.8",
                                                                                           "unit": "mg"}}]}]), True),
    ("order dosage a single object", _chart_order(dosageInstruction={"text": "0.8 mg twice daily"}), True),
    ("order authored in words", _chart_order(authoredOn="June"), False),
    ("order naming a contained medication", _chart_order(
        medicationCodeableConcept=..., medicationReference={"reference": "#med"},
        contained=[{"resourceType": "Medication", "id": "med", "code": {"text": "Increlex 40 mg/4 mL"}}]), True),
    ("order naming an invalid contained medication", _chart_order(
        medicationCodeableConcept=..., medicationReference={"reference": "#med"},
        contained=[{"resourceType": "Medication", "id": "med", "code": "Increlex"}]), False),
    ("medication statement", _statement(), True),
    ("statement without a status", _statement(status=...), False),
    ("statement category a list (0..1)", _statement(category=[{"text": "outpatient"}]), False),
    ("statement period start in words", _statement(effectivePeriod={"start": "January"}), False),
    # --- allergies, reports, coverage -----------------------------------------------------------------
    ("allergy to benzyl alcohol", _allergy(), True),
    ("allergy criticality with a space", _allergy(criticality="very high"), True),
    ("allergy without a patient", _allergy(patient=...), False),
    ("allergy reaction without a manifestation", _allergy(reaction=[{"severity": "severe"}]), False),
    ("bone-age report", _report(), True),
    ("report without a code", _report(code=...), False),
    ("report conclusion a list", _report(conclusion=["Growth plates open."]), False),
    ("report with a presented form", _report(presentedForm=[{"contentType": "text/plain", "data": "R3Jvd3RoIHBsYXRlcyBvcGVu"}]),
     True),
    ("coverage as the fixtures write it", _coverage(), True),
    ("coverage without a beneficiary", _coverage(beneficiary=...), False),
    ("coverage plan value a number", _coverage(**{"class": [{"type": {"text": "plan"}, "value": 2026}]}), False),
    ("coverage order a string", _coverage(order="1"), True),
]

def chart_with(resource: dict) -> dict:
    """The Laron order-select prefetch with `resource` in the search where a server would put it,
    replacing the chart's resource of the same type and id."""
    from tests.fixtures import fhir_bundle, laron_prefetch
    prefetch = laron_prefetch()
    key = {"Patient": "patient", "Observation": "observations", "Condition": "conditions",
           "MedicationRequest": "medications", "MedicationStatement": "medicationstatements",
           "AllergyIntolerance": "allergies", "DiagnosticReport": "boneagereports",
           "Coverage": "coverage"}[resource.get("resourceType") if resource.get("resourceType") != "Observatio"
                                   else "Observation"]
    if key == "patient":
        prefetch["patient"] = resource
        return prefetch
    kept = [e["resource"] for e in prefetch[key]["entry"] if e["resource"].get("id") != resource.get("id")]
    prefetch[key] = fhir_bundle(kept + [resource])
    return prefetch

