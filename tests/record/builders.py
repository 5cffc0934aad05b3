"""Builders of FHIR R4 resources shaped like real EHR output (US Core profiles, LOINC, SNOMED CT,
ICD-10-CM, UCUM, RxNorm), for record tests and for scenario tests that call `build_record`.

Every builder returns a plain dict; keyword arguments override or add fields, so a test can
change exactly one thing (`height("h1", "2024-01-10", 104.2, status="preliminary")`).
The default patient is a boy born 2018-03-14 (6.0 years old on 2024-03-14).
"""
from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
UNII = "http://fdasis.nlm.nih.gov"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
PATIENT_ID = "pat-7f3c2a"
PATIENT_REF = {"reference": f"Patient/{PATIENT_ID}"}
BIRTH_DATE = "2018-03-14"


def _merge(resource: dict, extra: dict[str, Any]) -> dict:
    for key, value in extra.items():
        if value is _DROP:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP = _DROP = _Drop()   # pass as a keyword value to remove a field: height(..., effectiveDateTime=DROP)


def quantity(value: Any, unit: str | None, code: str | None = None, **extra: Any) -> dict:
    q = {"value": value}
    if unit is not None:
        q.update(unit=unit, system=UCUM, code=code or unit)
    return _merge(q, extra)


def concept(system: str, code: str, display: str, text: str | None = None) -> dict:
    c = {"coding": [{"system": system, "code": code, "display": display}]}
    if text is not None:
        c["text"] = text
    return c


# --- Patient --------------------------------------------------------------------------------------

def patient(birth_date: str | None = BIRTH_DATE, gender: str | None = "male", birthsex: str | None = None,
            patient_id: str = PATIENT_ID, **extra: Any) -> dict:
    resource = {
        "resourceType": "Patient", "id": patient_id,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                              "code": "MR"}]},
                        "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14", "value": "E3826451"}],
        "active": True,
        "name": [{"use": "official", "family": "Mbeki", "given": ["Daniel", "T"]}],
        "telecom": [{"system": "phone", "value": "555-201-4477", "use": "home"}],
        "address": [{"line": ["41 Alder Court"], "city": "Madison", "state": "WI", "postalCode": "53703"}],
    }
    if gender is not None:
        resource["gender"] = gender
    if birth_date is not None:
        resource["birthDate"] = birth_date
    if birthsex is not None:
        resource["extension"] = [{"url": BIRTHSEX, "valueCode": birthsex}]
    return _merge(resource, extra)


# --- Observations ---------------------------------------------------------------------------------

def observation(obs_id: str, when: str | None, code: str, display: str, *, system: str = LOINC,
                value: Any = None, unit: str | None = None, ucum: str | None = None,
                category: str = "laboratory", status: str = "final", **extra: Any) -> dict:
    resource = {
        "resourceType": "Observation", "id": obs_id, "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category,
                                  "display": "Laboratory" if category == "laboratory" else "Vital Signs"}],
                      "text": "Laboratory" if category == "laboratory" else "Vital Signs"}],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": PATIENT_REF,
        "encounter": {"reference": "Encounter/enc-55120"},
    }
    if when is not None:
        resource["effectiveDateTime"] = when
        resource["issued"] = f"{when[:10]}T16:02:11Z" if len(when) >= 10 else when
    if value is not None:
        resource["valueQuantity"] = quantity(value, unit, ucum)
    return _merge(resource, extra)


def height(obs_id: str, when: str | None, value: Any, unit: str = "cm", ucum: str | None = None, **extra: Any) -> dict:
    resource = observation(obs_id, when, "8302-2", "Body height", value=value, unit=unit, ucum=ucum,
                           category="vital-signs", **extra)
    resource.setdefault("meta", {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyheight"]})
    return resource


def weight(obs_id: str, when: str | None, value: Any, unit: str = "kg", ucum: str | None = None, **extra: Any) -> dict:
    resource = observation(obs_id, when, "29463-7", "Body weight", value=value, unit=unit, ucum=ucum,
                           category="vital-signs", **extra)
    resource.setdefault("meta", {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"]})
    return resource


def reference_range(low: Any, high: Any, unit: str = "ng/mL", **extra: Any) -> dict:
    return _merge({"low": quantity(low, unit), "high": quantity(high, unit),
                   "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                                        "code": "normal", "display": "Normal Range"}]}}, extra)


def igf1(obs_id: str, when: str | None, value: Any, unit: str = "ng/mL", low: Any = 60, high: Any = 300,
         range_unit: str | None = None, **extra: Any) -> dict:
    if low is not None:
        extra.setdefault("referenceRange", [reference_range(low, high, range_unit or unit)])
    return observation(obs_id, when, "2484-4", "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma",
                       value=value, unit=unit, **extra)


def igf1_zscore(obs_id: str, when: str | None, value: Any, unit: str = "{SD}", **extra: Any) -> dict:
    return observation(obs_id, when, "73561-3", "Insulin-like growth factor-I [Z-score] in Serum or Plasma",
                       value=value, unit=unit, **extra)


GH_DISPLAY = {
    "2963-7": "Somatotropin [Mass/volume] in Serum or Plasma",
    "12253-1": "Somatotropin [Mass/volume] in Serum or Plasma --baseline",
}


def gh(obs_id: str, when: str | None, value: Any, code: str = "2963-7", unit: str = "ng/mL", **extra: Any) -> dict:
    display = GH_DISPLAY.get(code, "Somatotropin [Mass/volume] in Serum or Plasma --post stimulation")
    return observation(obs_id, when, code, display, value=value, unit=unit, **extra)


def bone_age(obs_id: str, when: str | None, value: Any, unit: str = "a", method: str | None = None, **extra: Any) -> dict:
    resource = observation(obs_id, when, "85151-9", "Bone age", value=value, unit=unit, category="imaging", **extra)
    if method is not None:
        resource["component"] = [{
            "code": {"coding": [{"system": LOINC, "code": "85150-1", "display": "Bone age method"}]},
            "valueCodeableConcept": {"text": method},
        }]
    return resource


def height_zscore(obs_id: str, when: str | None, value: Any, **extra: Any) -> dict:
    return observation(obs_id, when, "1153604005", "Height-for-age z-score", system=SNOMED, value=value,
                       unit="{Z-score}", category="vital-signs", **extra)


def height_percentile(obs_id: str, when: str | None, value: Any, code: str = "8303-0", **extra: Any) -> dict:
    system = LOINC if code == "8303-0" else SNOMED
    return observation(obs_id, when, code, "Body height Percentile", system=system, value=value, unit="%",
                       category="vital-signs", **extra)


# --- Conditions, reports, allergies ---------------------------------------------------------------

def condition(cond_id: str, *, icd10: tuple[str, str] | None = None, snomed: tuple[str, str] | None = None,
              text: str | None = None, clinical: str | None = "active", verification: str | None = "confirmed",
              onset: str | None = "2021-06-02", **extra: Any) -> dict:
    codings = []
    if icd10:
        codings.append({"system": ICD10CM, "code": icd10[0], "display": icd10[1]})
    if snomed:
        codings.append({"system": SNOMED, "code": snomed[0], "display": snomed[1]})
    code: dict[str, Any] = {"coding": codings}
    if text:
        code["text"] = text
    resource = {
        "resourceType": "Condition", "id": cond_id,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns"]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item", "display": "Problem List Item"}]}],
        "code": code, "subject": PATIENT_REF, "recordedDate": "2022-01-18",
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": CONDITION_VER, "code": verification}]}
    if onset:
        resource["onsetDateTime"] = onset
    return _merge(resource, extra)


def laron_condition(cond_id: str = "cond-laron", **extra: Any) -> dict:
    return condition(cond_id, icd10=("E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
                     snomed=("38196001", "Laron-type isolated somatotropin defect"),
                     text="Laron syndrome (primary IGF-1 deficiency)", **extra)


def diagnostic_report(report_id: str, when: str, conclusion: str, status: str = "final", **extra: Any) -> dict:
    return _merge({
        "resourceType": "DiagnosticReport", "id": report_id, "status": status,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "37362-1", "display": "XR Bone age"}], "text": "XR hand for bone age"},
        "subject": PATIENT_REF, "effectiveDateTime": when, "issued": f"{when}T18:20:00Z",
        "conclusion": conclusion,
    }, extra)


def allergy(allergy_id: str, *, code: dict, clinical: str | None = "active", verification: str | None = "confirmed",
            **extra: Any) -> dict:
    resource = {
        "resourceType": "AllergyIntolerance", "id": allergy_id,
        "type": "allergy", "category": ["medication"], "criticality": "high",
        "code": code, "patient": PATIENT_REF, "recordedDate": "2023-02-07",
        "reaction": [{"manifestation": [{"coding": [{"system": SNOMED, "code": "39579001", "display": "Anaphylaxis"}]}]}],
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": ALLERGY_VER, "code": verification}]}
    return _merge(resource, extra)


# --- Medications ----------------------------------------------------------------------------------

ROUTES = {
    "subcutaneous": {"coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}],
                     "text": "Subcutaneous"},
    "intravenous": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}],
                    "text": "Intravenous"},
    "oral": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}], "text": "Oral"},
    "inhaled": {"coding": [{"system": SNOMED, "code": "447694001", "display": "Respiratory tract route"}],
                "text": "Inhalation"},
}

MECASERMIN_CONCEPT = {
    "coding": [
        {"system": NDC, "code": "15054-1040-05", "display": "Increlex 40 MG in 4 ML Injection"},
    ],
    "text": "mecasermin 10 MG/ML Injectable Solution [Increlex]",
}


def medication_request(req_id: str, medication: dict | str, *, status: str = "active", intent: str = "order",
                       route: str | dict | None = "oral", dose: tuple[Any, str] | None = None,
                       timing: dict | None = None, authored: str = "2023-11-02", **extra: Any) -> dict:
    if isinstance(medication, str):
        medication = {"text": medication}
    dosage: dict[str, Any] = {"sequence": 1}
    if timing is not None:
        dosage["timing"] = timing
    if route is not None:
        dosage["route"] = ROUTES[route] if isinstance(route, str) else route
    if dose is not None:
        dosage["doseAndRate"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                                       "code": "ordered", "display": "Ordered"}]},
                                  "doseQuantity": quantity(dose[0], dose[1])}]
    resource = {
        "resourceType": "MedicationRequest", "id": req_id, "status": status, "intent": intent,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                  "code": "outpatient", "display": "Outpatient"}]}],
        "medicationCodeableConcept": medication,
        "subject": PATIENT_REF, "authoredOn": authored,
        "requester": {"reference": "Practitioner/prac-4410", "display": "Ana Ruiz, MD"},
        "dosageInstruction": [dosage],
    }
    return _merge(resource, extra)


def medication_statement(stmt_id: str, medication: dict | str, *, status: str = "active",
                         route: str | None = "oral", effective: str = "2023-09-01", **extra: Any) -> dict:
    if isinstance(medication, str):
        medication = {"text": medication}
    resource = {
        "resourceType": "MedicationStatement", "id": stmt_id, "status": status,
        "medicationCodeableConcept": medication, "subject": PATIENT_REF,
        "effectiveDateTime": effective, "dateAsserted": effective,
        "dosage": [{"route": ROUTES[route]}] if route else [],
    }
    return _merge(resource, extra)


def bid_timing() -> dict:
    return {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"},
            "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "BID",
                                 "display": "BID"}], "text": "twice a day"}}


def mecasermin_order(order_id: str = "medrx-draft-1", *, dose: tuple[Any, str] | None = (0.8, "mg"),
                     timing: dict | None = None, route: str | dict | None = "subcutaneous",
                     reason: list | dict | None = None, status: str = "draft", **extra: Any) -> dict:
    """The draft Increlex order as an EHR sends it in `draftOrders`: 0.8 mg subcutaneously twice a
    day (0.04 mg/kg for a 20 kg child) within 20 minutes of a meal, 4 vials."""
    resource = medication_request(order_id, dict(MECASERMIN_CONCEPT), status=status, route=route, dose=dose,
                                  timing=timing if timing is not None else bid_timing(), authored="2024-03-14")
    resource["dosageInstruction"][0]["text"] = "Inject 0.8 mg under the skin twice a day within 20 minutes of a meal"
    resource["dispenseRequest"] = {"quantity": {"value": 4, "unit": "vial"},
                                   "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}}
    resource["reasonCode"] = reason if reason is not None else [
        concept(ICD10CM, "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")]
    return _merge(resource, extra)


# --- Coverage -------------------------------------------------------------------------------------

def organization(org_id: str, name: str, identifier: tuple[str, str] | None = None) -> dict:
    resource = {"resourceType": "Organization", "id": org_id, "active": True, "name": name,
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                      "code": "ins", "display": "Insurance Company"}]}]}
    if identifier:
        resource["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    return resource


def coverage(cov_id: str, payer_display: str | None = "Premera Blue Cross", *, org_id: str | None = None,
             status: str = "active", plan: str | None = "Premera Heritage Plus PPO", type_coding: dict | None = None,
             order: int | None = None, **extra: Any) -> dict:
    payor: dict[str, Any] = {}
    if org_id:
        payor["reference"] = f"Organization/{org_id}"
    if payer_display:
        payor["display"] = payer_display
    resource: dict[str, Any] = {
        "resourceType": "Coverage", "id": cov_id, "status": status,
        "subscriberId": "PRM448120931", "beneficiary": PATIENT_REF,
        "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                     "code": "child"}]},
        "period": {"start": "2023-01-01"},
        "payor": [payor],
    }
    if plan:
        resource["class"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                                   "code": "plan"}]}, "value": "HPPO-22", "name": plan}]
    if type_coding:
        resource["type"] = {"coding": [type_coding]}
    if order is not None:
        resource["order"] = order
    return _merge(resource, extra)


def bundle(*resources: dict, bundle_type: str | None = "searchset") -> dict:
    out: dict[str, Any] = {"resourceType": "Bundle", "entry": [
        {"fullUrl": f"https://ehr.example.org/fhir/R4/{r['resourceType']}/{r.get('id', '')}", "resource": r,
         "search": {"mode": "match"}} for r in resources]}
    if bundle_type:
        out["type"] = bundle_type
        out["total"] = len(resources)
    return out
