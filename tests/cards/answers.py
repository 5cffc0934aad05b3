"""Every answer the service gives for the demo patients (sandbox-config/patients) and the test-chart
corpus, through both order hooks and the patient-view screen, in-process with full prefetch: the
charts the card budgets (cards/DESIGN.md) are checked on."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from service.fhir.prefetch import templates
from service.screening import templates as screening_templates
from tests.fixtures import fhir_bundle, order_select_request

ROOT = Path(__file__).resolve().parents[2]
PATIENTS = ROOT / "sandbox-config" / "patients"
PREFETCH_KEY = {"Condition": "conditions", "Observation": "observations", "MedicationRequest": "medications",
                "MedicationStatement": "medicationstatements", "MedicationDispense": "medicationdispenses",
                "MedicationAdministration": "medicationadministrations",
                "AllergyIntolerance": "allergies", "Coverage": "coverage", "Organization": "coverage",
                "DiagnosticReport": "reports"}
ORDER_SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
                  "order-sign": "/cds-services/mecasermin-order-sign"}
SCREEN_SERVICE = "/cds-services/mecasermin-screen"


def demo_resources(path: Path) -> list[dict]:
    return [entry["resource"] for entry in json.loads(path.read_text(encoding="utf-8"))["entry"]]


def demo_paths() -> list[Path]:
    return sorted(PATIENTS.glob("demo-*.json"))


def order_prefetch(resources: list[dict]) -> dict:
    prefetch = {key: fhir_bundle([]) for key in templates()}
    for resource in resources:
        if resource["resourceType"] == "Patient":
            prefetch["patient"] = resource
        elif resource["resourceType"] in PREFETCH_KEY:
            prefetch[PREFETCH_KEY[resource["resourceType"]]]["entry"] += fhir_bundle([resource])["entry"]
    for bundle in prefetch.values():
        if bundle.get("resourceType") == "Bundle":
            bundle["total"] = len(bundle["entry"])
    return prefetch


def order_body(resources: list[dict], hook: str) -> dict:
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest" and r.get("status") == "draft"
                 and "mecasermin" in json.dumps(r.get("medicationCodeableConcept", {})).lower())
    body = order_select_request(prefetch=order_prefetch(resources), order=copy.deepcopy(order), hook=hook)
    body["context"]["patientId"] = patient["id"]
    return body


def screen_body(resources: list[dict], *, with_draft: bool = False) -> dict:
    """A patient-view request with the growth, Patient and medication prefetch (no draft orders by default:
    the chart as it was before anyone ordered)."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    kept = [r for r in resources if with_draft or not (r["resourceType"] == "MedicationRequest"
                                                       and r.get("status") == "draft")]
    full = order_prefetch(kept)
    prefetch = {key: full.get(key, fhir_bundle([])) for key in screening_templates()}
    observations = [e for e in full["observations"]["entry"]]
    prefetch["growth"] = {**fhir_bundle([]), "entry": observations, "total": len(observations)}
    prefetch["patient"] = patient
    return {"hookInstance": "5b0d7a56-8d1f-4c7a-9f3e-2f2a63f2a111", "hook": "patient-view",
            "context": {"userId": "Practitioner/demo-pediatric-endocrinologist", "patientId": patient["id"]},
            "prefetch": prefetch}
