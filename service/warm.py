"""Loading before gunicorn forks what every worker would otherwise load on its first call.

fhir.resources imports each R4B model class, and each element type it holds, the first time a
resource of that type is validated: left to the workers, the first call after a start costs
hundreds of milliseconds, in every worker. Loaded once in the master, the classes, the fast R4
check's tables compiled from them and the request schemas' validators are shared by every worker
the fork makes. Then one mecasermin order-select is answered from a built-in chart (`_warm_call`),
through the same body checks, gathering, record, evaluation and cards as a served call, so that
what those load or compile on first use (reference tables, patterns, wording) is loaded too.
Nothing here opens a connection, a thread or a file that stays open (those must not cross a fork):
the call is answered without a store, a FHIR server or a DTR snapshot, and its answer is dropped.
"""
from __future__ import annotations

import gc
import json
import typing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from fhir.resources.R4B import get_fhir_model_class

from service.fhir.r4_shape import surely_valid
from service.fhir.resources import READ_TYPES
from service.validation import SCHEMA_DIR, validator

WARM_SERVICE = "mecasermin-order-select"


def warm_up(settings=None, policies=None, today: date | None = None) -> int:
    """Loads the model classes of every type the service validates and every type they hold,
    compiles every request schema and, given the settings and policies, answers one call from the
    built-in chart; returns how many model classes are loaded."""
    loaded: set[type] = set()
    pending = [get_fhir_model_class(name) for name in sorted(READ_TYPES)]
    while pending:
        model = pending.pop()
        if model in loaded:
            continue
        loaded.add(model)
        pending.extend(_element_models(model))
    for name in READ_TYPES:
        surely_valid({"resourceType": name})      # compiles the tables of the type and all it holds
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        validator(path.name)
    if settings is not None and policies is not None:
        _warm_call(settings, policies, today or date.today())
    # What is loaded now lives as long as the process: no collection needs to scan it again, and
    # a worker that leaves it unscanned leaves its pages shared with the master.
    gc.freeze()
    return len(loaded)


@dataclass
class _WarmDependencies:
    """What `answer_hook` reads of `service.app.Dependencies`: no store, no FHIR client, no snapshots."""

    settings: object
    policies: object
    today: Callable[[], date]
    fhir_client: None = None
    snapshots: None = None


def _warm_call(settings, policies, today: date) -> dict:
    """The answer to an order-select for the built-in chart, as `call_service` works it out."""
    from flask import Flask, request

    from service.api.request_body import read_json
    from service.api.services import SERVICES
    from service.pipeline import answer_hook
    from service.validation import CONTEXT_SCHEMAS, violations

    service = SERVICES[WARM_SERVICE]
    body = json.dumps(warm_request(today, _payer_name(policies))).encode()
    with Flask(__name__).test_request_context(method="POST", data=body, content_type="application/json"):
        parsed = read_json(request, settings.max_body_bytes, settings.max_json_depth)
    problems = violations("cds-request.schema.json", parsed) + violations(
        CONTEXT_SCHEMAS[service.hook], parsed["context"], prefix="$.context")
    if problems:
        raise RuntimeError(f"the warm-up chart does not pass the request schema: {problems[:1]}")
    deps = _WarmDependencies(settings, policies, lambda: today)
    outcome = answer_hook(service, parsed, deps, "http://localhost")
    outcome.audit(service.id, parsed, elapsed_ms=0.0)
    return outcome.response


def _payer_name(policies) -> str:
    """A payer name a payer policy claims (its own example), so that the warm call applies payer criteria."""
    for policy in policies.policies:
        for name in policy.payer.example_names if policy.kind == "payer" else ():
            if policy.payer.claims_name(name):
                return name
    return "no payer policy"


def warm_request(today: date, payer: str) -> dict:
    """An order-select for a made-up 6½-year-old with primary IGF-1 deficiency (not a patient),
    covered by `payer`: a chart whose resources take every reader's usual path (heights, weight,
    IGF-1 with its range, GH stimulation, bone age, diagnosis, coverage, prescriber)."""
    def day(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    def quantity(value, unit):
        return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}

    def observation(oid, days_ago, code, display, value, unit, category="laboratory", **extra):
        return {"resourceType": "Observation", "id": oid, "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": category}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
                "subject": {"reference": "Patient/warm"}, "effectiveDateTime": day(days_ago),
                "valueQuantity": quantity(value, unit), **extra}

    def bundle(*resources):
        return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
                "entry": [{"resource": r} for r in resources]}

    reason = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E34.321",
              "display": "Primary insulin-like growth factor-1 (IGF-1) deficiency"}
    order = {
        "resourceType": "MedicationRequest", "id": "warm-order", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "15054-1040-05",
                                                  "display": "Increlex 40 mg/4 mL vial"}],
                                      "text": "mecasermin 10 MG/ML Injectable Solution [Increlex]"},
        "subject": {"reference": "Patient/warm"}, "authoredOn": day(0), "requester": {"reference": "Practitioner/warm-dr"},
        "reasonCode": [{"coding": [reason]}],
        "dosageInstruction": [{"text": "0.8 mg subcutaneously twice daily",
                               "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                               "route": {"coding": [{"system": "http://snomed.info/sct", "code": "34206005",
                                                     "display": "Subcutaneous route"}]},
                               "doseAndRate": [{"doseQuantity": quantity(0.8, "mg")}]}],
        "dispenseRequest": {"quantity": quantity(4, "mL"),
                            "expectedSupplyDuration": {"value": 30, "unit": "days",
                                                       "system": "http://unitsofmeasure.org", "code": "d"}}}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "warm", "gender": "male", "birthDate": day(6 * 365 + 180)},
        "conditions": bundle({
            "resourceType": "Condition", "id": "warm-dx",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": "confirmed"}]},
            "code": {"coding": [reason], "text": reason["display"]},
            "subject": {"reference": "Patient/warm"}, "onsetDateTime": day(600)}),
        "observations": bundle(
            observation("warm-h1", 400, "8302-2", "Body height", 96.1, "cm", "vital-signs"),
            observation("warm-h2", 200, "8302-2", "Body height", 98.2, "cm", "vital-signs"),
            observation("warm-h3", 30, "8302-2", "Body height", 100.4, "cm", "vital-signs"),
            observation("warm-w1", 30, "29463-7", "Body weight", 15.2, "kg", "vital-signs"),
            observation("warm-igf1", 80, "2484-4", "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma",
                        18.0, "ng/mL", referenceRange=[{"low": quantity(52.0, "ng/mL"), "high": quantity(297.0, "ng/mL")}]),
            observation("warm-gh1", 100, "14146-5", "Somatotropin [Mass/volume] in Serum or Plasma", 14.2, "ng/mL"),
            observation("warm-ba1", 90, "85151-9", "Bone age", 4.5, "a")),
        "coverage": bundle({"resourceType": "Coverage", "id": "warm-cov", "status": "active",
                            "beneficiary": {"reference": "Patient/warm"}, "payor": [{"display": payer}]}),
        "prescriber": {"resourceType": "Practitioner", "id": "warm-dr", "active": True,
                       "name": [{"family": "Warm", "given": ["Up"]}]},
        "prescriberroles": bundle({"resourceType": "PractitionerRole", "id": "warm-role", "active": True,
                                   "practitioner": {"reference": "Practitioner/warm-dr"},
                                   "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy",
                                                              "code": "2080P0205X",
                                                              "display": "Pediatric Endocrinology"}]}]}),
    }
    for key in ("imagingresults", "medications", "medicationstatements", "medicationdispenses",
                "medicationadministrations", "allergies", "reports", "boneagereports"):
        prefetch[key] = bundle()       # searched, nothing found: no technical gap
    return {"hookInstance": "warm-up", "hook": "order-select",
            "context": {"userId": "Practitioner/warm-dr", "patientId": "warm", "encounterId": "warm-enc",
                        "selections": ["MedicationRequest/warm-order"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
            "prefetch": prefetch}


def _element_models(model: type) -> list[type]:
    """The model classes of `model`'s elements (fhir_core names them lazily, by import path)."""
    found = []
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if hasattr(annotation, "get_model_klass"):
                found.append(annotation.get_model_klass())
            stack.extend(typing.get_args(annotation))
    return found
