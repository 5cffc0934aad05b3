"""Patient charts as FHIR R4 Bundles, shaped like real EHR output, for the policy scenario tests.

A `Chart` collects resources (US Core-style Patient, Observations with LOINC and UCUM, Conditions
with ICD-10-CM/SNOMED, AllergyIntolerance, MedicationRequest, Coverage, DiagnosticReport) and a
draft mecasermin order; `chart.decide(policies)` runs the whole path the service runs:
Bundle → resources_from_bundle → build_record → evaluate → word.

`laron_boy()` is the reference patient: a boy born 2018-09-20 (6.45 years on TODAY) with Laron
syndrome, covered by Premera, whose chart meets every initial criterion. Tests change one thing.
"""
from __future__ import annotations

import copy
from datetime import date
from typing import Any

from service.policy import evaluate
from service.wording import word
from service.record import build_record, resources_from_bundle

TODAY = date(2025, 3, 3)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UNII = "http://fdasis.nlm.nih.gov"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PATIENT_ID = "pt-48d1e0"
PATIENT_REF = {"reference": f"Patient/{PATIENT_ID}"}


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def _quantity(value: float, unit: str, code: str | None = None, comparator: str | None = None) -> dict:
    q: dict[str, Any] = {"value": value, "unit": unit, "system": UCUM, "code": code or unit}
    if comparator:
        q["comparator"] = comparator
    return q


class Chart:
    def __init__(self, birth_date: str = "2018-09-20", sex: str = "male"):
        self.resources: list[dict] = [{
            "resourceType": "Patient", "id": PATIENT_ID,
            "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
            "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                           "valueCode": "M" if sex == "male" else "F"}],
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.7418.2.1", "value": "MRN-1185532"}],
            "name": [{"family": "Reyes", "given": ["Mateo" if sex == "male" else "Lucia"]}],
            "gender": sex, "birthDate": birth_date,
        }]
        self.order: dict | None = None

    # ------------------------------------------------------------------ helpers
    def add(self, resource: dict) -> "Chart":
        self.resources.append(resource)
        return self

    def drop(self, reference: str) -> "Chart":
        kind, rid = reference.split("/")
        before = len(self.resources)
        self.resources = [r for r in self.resources if not (r["resourceType"] == kind and r.get("id") == rid)]
        assert len(self.resources) == before - 1, f"{reference} not in the chart"
        return self

    def drop_all(self, resource_type: str) -> "Chart":
        self.resources = [r for r in self.resources if r["resourceType"] != resource_type]
        return self

    def _obs(self, obs_id: str, when: str, code: str, display: str, category: str = "laboratory", **value: Any) -> dict:
        resource = {
            "resourceType": "Observation", "id": obs_id, "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
            "code": _concept(LOINC, code, display, display),
            "subject": PATIENT_REF, "effectiveDateTime": when, "issued": f"{when}T16:20:00Z",
        }
        resource.update(value)
        self.add(resource)
        return resource

    # ------------------------------------------------------------- measurements
    def height(self, obs_id: str, when: str, value: float, unit: str = "cm") -> "Chart":
        self._obs(obs_id, when, "8302-2", "Body height", "vital-signs",
                  valueQuantity=_quantity(value, unit, {"in": "[in_i]"}.get(unit, unit)))
        return self

    def weight(self, obs_id: str, when: str, kg: float) -> "Chart":
        self._obs(obs_id, when, "29463-7", "Body weight", "vital-signs", valueQuantity=_quantity(kg, "kg"))
        return self

    def height_percentile(self, obs_id: str, when: str, percentile: float) -> "Chart":
        self._obs(obs_id, when, "8303-0", "Body height Percentile", "vital-signs",
                  valueQuantity=_quantity(percentile, "%"))
        return self

    def height_z(self, obs_id: str, when: str, z: float) -> "Chart":
        resource = self._obs(obs_id, when, "8302-2", "", "vital-signs",
                             valueQuantity={"value": z, "unit": "SD", "system": UCUM, "code": "{SD}"})
        resource["code"] = _concept(SNOMED, "1153604005", "Height-for-age z-score", "Height-for-age z-score (CDC)")
        return self

    def igf1(self, obs_id: str, when: str, value: float, low: float | None = 39.0, high: float | None = 191.0,
             unit: str = "ng/mL", comparator: str | None = None) -> "Chart":
        extra: dict[str, Any] = {"valueQuantity": _quantity(value, unit, comparator=comparator)}
        if low is not None and high is not None:
            extra["referenceRange"] = [{"low": _quantity(low, unit), "high": _quantity(high, unit),
                                        "text": "age- and sex-specific (6-7 y male)"}]
        self._obs(obs_id, when, "2484-4", "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma", **extra)
        return self

    def igf1_z(self, obs_id: str, when: str, z: float) -> "Chart":
        self._obs(obs_id, when, "73561-3", "Insulin-like growth factor-I [Z-score] in Serum or Plasma",
                  valueQuantity={"value": z, "unit": "SD", "system": UCUM, "code": "{SD}"})
        return self

    def gh(self, obs_id: str, when: str, value: float, unit: str = "ng/mL", code: str = "2963-7",
           display: str = "Somatotropin [Mass/volume] in Serum or Plasma --post arginine stimulation") -> "Chart":
        ucum = {"mIU/L": "m[IU]/L"}.get(unit, unit)
        self._obs(obs_id, when, code, display, valueQuantity=_quantity(value, unit, ucum))
        return self

    def bone_age(self, obs_id: str, when: str, years: float, method: str = "Greulich and Pyle") -> "Chart":
        self._obs(obs_id, when, "85151-9", "Bone age", "imaging", valueQuantity=_quantity(years, "a"),
                  method={"text": method})
        return self

    def xray_report(self, report_id: str, when: str, conclusion: str) -> "Chart":
        return self.add({
            "resourceType": "DiagnosticReport", "id": report_id, "status": "final",
            "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"}]}],
            "code": _concept(LOINC, "37362-1", "XR Bone age study", "XR hand and wrist, bone age"),
            "subject": PATIENT_REF, "effectiveDateTime": when, "issued": f"{when}T10:05:00Z",
            "conclusion": conclusion,
        })

    # ---------------------------------------------------------------- problems
    def condition(self, cond_id: str, system: str, code: str, display: str, *, text: str | None = None,
                  status: str = "active", verification: str = "confirmed", onset: str = "2021-11-04",
                  extra_coding: tuple[str, str, str] | None = None) -> "Chart":
        concept = _concept({"icd10": ICD10CM, "snomed": SNOMED}[system], code, display, text)
        if extra_coding:
            sys2, code2, display2 = extra_coding
            concept["coding"].append({"system": {"icd10": ICD10CM, "snomed": SNOMED}[sys2], "code": code2,
                                      "display": display2})
        return self.add({
            "resourceType": "Condition", "id": cond_id,
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical", status, status),
            "verificationStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           verification, verification),
            "category": [_concept("http://terminology.hl7.org/CodeSystem/condition-category",
                                  "problem-list-item", "Problem List Item")],
            "code": concept, "subject": PATIENT_REF, "onsetDateTime": onset, "recordedDate": onset,
        })

    def allergy(self, allergy_id: str, code: dict, *, criticality: str = "high", verification: str = "confirmed",
                reaction: str = "urticaria") -> "Chart":
        return self.add({
            "resourceType": "AllergyIntolerance", "id": allergy_id,
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
            "verificationStatus": _concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                           verification, verification.title()),
            "type": "allergy", "category": ["medication"], "criticality": criticality,
            "code": code, "patient": PATIENT_REF, "recordedDate": "2024-06-18",
            "reaction": [{"manifestation": [{"text": reaction}]}],
        })

    def medication(self, med_id: str, text: str, *, status: str = "active", authored: str = "2024-09-02",
                   rxnorm: str | None = None, route: tuple[str, str] | None = None, dose_text: str | None = None,
                   resource_type: str = "MedicationRequest") -> "Chart":
        concept = {"text": text}
        if rxnorm:
            concept = _concept(RXNORM, rxnorm, text, text)
        resource: dict[str, Any] = {"resourceType": resource_type, "id": med_id, "status": status,
                                    "medicationCodeableConcept": concept, "subject": PATIENT_REF}
        dosage: dict[str, Any] = {}
        if dose_text:
            dosage["text"] = dose_text
        if route:
            dosage["route"] = _concept(SNOMED, route[0], route[1])
        if resource_type == "MedicationRequest":
            resource.update(intent="order", authoredOn=authored)
            if dosage:
                resource["dosageInstruction"] = [dosage]
        else:
            resource.update(effectivePeriod={"start": authored}, dateAsserted=authored)
            if dosage:
                resource["dosage"] = [dosage]
        return self.add(resource)

    def prior_mecasermin(self, started: str, status: str = "active") -> "Chart":
        return self.add({
            "resourceType": "MedicationRequest", "id": "mecasermin-2024", "status": status, "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": NDC, "code": "15054-1040-05", "display": "Increlex 40 MG in 4 ML Injection"}],
                "text": "Increlex (mecasermin) 10 mg/mL injection"},
            "subject": PATIENT_REF, "authoredOn": started,
            "dosageInstruction": [{"text": "0.08 mg/kg subcut twice daily with meals"}],
        })

    def coverage(self, payer: str = "Premera Blue Cross", *, plan: str = "Premera Heritage Plus PPO",
                 identifier: tuple[str, str] | None = None, status: str = "active", cov_id: str = "cov-1",
                 type_code: tuple[str, str] | None = None) -> "Chart":
        org_id = f"org-{cov_id}"
        org: dict[str, Any] = {"resourceType": "Organization", "id": org_id, "name": payer, "active": True}
        if identifier:
            org["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
        resource: dict[str, Any] = {
            "resourceType": "Coverage", "id": cov_id, "status": status,
            "subscriberId": "PRM0044718203", "beneficiary": PATIENT_REF, "relationship": _concept(
                "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "child", "Child"),
            "period": {"start": "2024-01-01"},
            "payor": [{"reference": f"Organization/{org_id}", "display": payer}],
            "class": [{"type": _concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"),
                       "value": "HP-2210", "name": plan}],
        }
        if type_code:
            resource["type"] = _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", type_code[0], type_code[1])
        return self.add(org).add(resource)

    # ------------------------------------------------------------------- order
    def draft_order(self, value: float = 0.9, unit: str = "mg", *, per_day: int | None = 2,
                    route: tuple[str, str] | None = ("34206005", "Subcutaneous route"),
                    reasons: list[tuple[str, str, str]] | None = None, reason_text: str | None = None,
                    ucum: str | None = None) -> "Chart":
        dosage: dict[str, Any] = {
            "sequence": 1,
            "text": f"Inject {value:g} {unit} under the skin within 20 minutes of a meal or snack",
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum or unit}}],
        }
        if per_day is not None:
            dosage["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
        if route is not None:
            dosage["route"] = _concept(SNOMED, route[0], route[1])
        order: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": "draft-increlex", "status": "draft", "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": NDC, "code": "15054-1040-05", "display": "Increlex 40 MG in 4 ML Injection"}],
                "text": "Increlex (mecasermin) 10 mg/mL injection"},
            "subject": PATIENT_REF, "authoredOn": TODAY.isoformat(),
            "requester": {"reference": "Practitioner/pr-5521", "display": "Dr. Anika Sorensen"},
            "dosageInstruction": [dosage],
            "dispenseRequest": {"quantity": {"value": 4, "unit": "mL", "system": UCUM, "code": "mL"},
                                "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}},
        }
        reason_codes = []
        for system, code, display in reasons if reasons is not None else [("icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")]:
            reason_codes.append(_concept({"icd10": ICD10CM, "snomed": SNOMED}[system], code, display))
        if reason_text:
            reason_codes.append({"text": reason_text})
        if reason_codes:
            order["reasonCode"] = reason_codes
        self.order = order
        return self

    # ---------------------------------------------------------------- running
    def bundle(self) -> dict:
        entries = [{"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r.get('id')}", "resource": r}
                   for r in self.resources]
        if self.order is not None:
            entries.append({"fullUrl": "urn:uuid:draft-increlex", "resource": self.order})
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}

    def record(self, today: date = TODAY):
        return build_record(resources_from_bundle(self.bundle()), self.order, today)

    def decide(self, policies, today: date = TODAY, **kwargs):
        return word(evaluate(self.record(today), policies, today, **kwargs))

    def copy(self) -> "Chart":
        return copy.deepcopy(self)


def laron_boy(*, coverage: bool = True, order: bool = True) -> Chart:
    """6.45-year-old boy with Laron syndrome meeting every initial criterion of the Premera policy."""
    chart = Chart()
    chart.condition("cond-laron", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency",
                    text="Laron syndrome (GHR mutation, homozygous)",
                    extra_coding=("snomed", "38196001", "Laron-type isolated somatotropin defect"))
    chart.height("ht-2024-01", "2024-01-10", 95.0).height("ht-2025-01", "2025-01-15", 99.8)
    chart.weight("wt-2025-02", "2025-02-20", 15.6)
    chart.igf1("igf1-2024-12", "2024-12-10", 18.0)            # range 39–191 ng/mL → SDS -3.95
    chart.gh("gh-arg-2024-12", "2024-12-10", 24.5)
    chart.bone_age("ba-2024-12", "2024-12-12", 4.5)
    if coverage:
        chart.coverage()
    if order:
        chart.draft_order(0.9, "mg")                            # 0.9 mg / 15.6 kg = 0.058 mg/kg
    return chart
