"""Request-level fixtures shaped like real EHR output (R4, LOINC/UCUM, ICD-10-CM, SNOMED).

The default patient is a 6-year-old boy with Laron syndrome who meets the primary plan's
criteria; tests change one thing at a time.
"""
from __future__ import annotations

import copy
import uuid

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
PATIENT_ID = "p1"


def patient_resource(birth_date="2020-05-14", gender="male", patient_id=PATIENT_ID):
    return {
        "resourceType": "Patient", "id": patient_id,
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-448812"}],
        "name": [{"family": "Okafor", "given": ["Tobi"]}],
        "gender": gender, "birthDate": birth_date,
    }


def _observation(obs_id, date, code, display, value=None, unit=None, ucum=None, **extra):
    resource = {
        "resourceType": "Observation", "id": obs_id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory" if code not in ("8302-2", "29463-7") else "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": date,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": ucum or unit}
    resource.update(extra)
    return resource


def height_observation(obs_id, date, cm, unit="cm", ucum="cm"):
    return _observation(obs_id, date, "8302-2", "Body height", cm, unit, ucum)


def weight_observation(obs_id, date, kg):
    return _observation(obs_id, date, "29463-7", "Body weight", kg, "kg")


def igf1_observation(obs_id, date, value, low=52.0, high=297.0, unit="ng/mL"):
    return _observation(obs_id, date, "2484-4", "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma",
                        value, unit, referenceRange=[{"low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                                                      "high": {"value": high, "unit": unit, "system": UCUM,
                                                               "code": unit}}])


def gh_observation(obs_id, date, value, code="2963-7", unit="ng/mL"):
    return _observation(obs_id, date, code, "Somatotropin [Mass/volume] in Serum or Plasma", value, unit)


def bone_age_observation(obs_id, date, years):
    return _observation(obs_id, date, "85151-9", "Bone age", years, "a")


def condition(cond_id, code, display, system=ICD10, status="active"):
    return {
        "resourceType": "Condition", "id": cond_id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": status}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "onsetDateTime": "2023-03-01",
    }


def coverage(payer="Premera Blue Cross", cov_id="cov1"):
    return {
        "resourceType": "Coverage", "id": cov_id, "status": "active",
        "beneficiary": {"reference": f"Patient/{PATIENT_ID}"},
        "payor": [{"display": payer}],
        "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                        "code": "plan"}]}, "value": "PPO-2026", "name": "Heritage Prime PPO"}],
    }


def mecasermin_order(order_id="mr-1", dose_mg=0.8, per_day=2, route_code="34206005", route="Subcutaneous route",
                     reason=("E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")):
    order = {
        "resourceType": "MedicationRequest", "id": order_id, "status": "draft", "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "15054-1040-05",
                        "display": "Increlex 40 mg/4 mL vial"}],
            "text": "mecasermin 10 MG/ML Injectable Solution [Increlex]"},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": "2026-11-21",
        "requester": {"reference": "Practitioner/dr-7"},
        "dosageInstruction": [{
            "text": f"{dose_mg} mg subcutaneously twice daily within 20 minutes of a meal",
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "route": {"coding": [{"system": SNOMED, "code": route_code, "display": route}]},
            "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
        }],
        "dispenseRequest": {"quantity": {"value": 4, "unit": "mL", "system": UCUM, "code": "mL"},
                            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}},
    }
    if reason:
        order["reasonCode"] = [{"coding": [{"system": ICD10, "code": reason[0], "display": reason[1]}]}]
    return order


def fhir_bundle(resources, bundle_type="searchset"):
    return {"resourceType": "Bundle", "type": bundle_type, "total": len(resources),
            "entry": [{"fullUrl": f"http://127.0.0.1:9999/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in resources]}


def laron_prefetch():
    """A 6.5-year-old boy with Laron syndrome who meets the primary plan's initial criteria."""
    return {
        "patient": patient_resource(),
        "conditions": fhir_bundle([condition("c1", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")]),
        "observations": fhir_bundle([
            height_observation("h3", "2026-10-20", 100.4),
            height_observation("h2", "2026-04-18", 98.2),
            height_observation("h1", "2025-10-15", 96.1),
            weight_observation("w1", "2026-10-20", 15.2),
            igf1_observation("igf1", "2026-09-02", 18.0),
            gh_observation("gh1", "2026-08-12", 14.2, code="14146-5"),
            gh_observation("gh2", "2026-08-12", 21.5, code="2963-7"),
            bone_age_observation("ba1", "2026-08-20", 4.5),
        ]),
        "imagingresults": fhir_bundle([]),
        "medications": fhir_bundle([]),
        "medicationstatements": fhir_bundle([]),
        "medicationdispenses": fhir_bundle([]),
        "medicationadministrations": fhir_bundle([]),
        "allergies": fhir_bundle([]),
        "coverage": fhir_bundle([coverage()]),
        "reports": fhir_bundle([]),
        "boneagereports": fhir_bundle([]),
        "prescriber": practitioner_resource(),
        "prescriberroles": fhir_bundle([practitioner_role()]),
    }


def practitioner_resource(pid="dr-7", **extra):
    """The ordering physician (the hook's user, Practitioner/dr-7), US Core shaped."""
    return {"resourceType": "Practitioner", "id": pid, "active": True,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "name": [{"family": "Okafor", "given": ["Adaeze"], "prefix": ["Dr"]}], **extra}


def practitioner_role(rid="role-dr-7", pid="dr-7", code="2080P0205X", display="Pediatric Endocrinology", **extra):
    """A PractitionerRole with a NUCC provider-taxonomy specialty (US Core)."""
    role = {"resourceType": "PractitionerRole", "id": rid, "active": True,
            "practitioner": {"reference": f"Practitioner/{pid}"},
            "organization": {"reference": "Organization/childrens-endo", "display": "Children's Endocrine Clinic"},
            "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": code,
                                       "display": display}]}]}
    role.update(extra)
    return role


def order_select_request(prefetch="default", order=None, selections=None, hook="order-select"):
    order = order or mecasermin_order()
    body = {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "context": {
            "userId": "Practitioner/dr-7", "patientId": PATIENT_ID, "encounterId": "enc-1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
        },
    }
    if hook == "order-select":
        body["context"]["selections"] = selections or [f"MedicationRequest/{order['id']}"]
    if prefetch == "default":
        body["prefetch"] = laron_prefetch()
    elif prefetch is not None:
        body["prefetch"] = prefetch
    return copy.deepcopy(body)


def order_sign_request(**kwargs):
    return order_select_request(hook="order-sign", **kwargs)
