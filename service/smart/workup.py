"""The SMART app's view of a patient: the same core the CDS service runs, fed by the app's token.

gather (service.fhir, with the SMART access token and the patient from the token response)
→ build_record → evaluate. The order named by the launch (appContext, fhirContext or the launch
URL) is read from the EHR; when it cannot be read, is not mecasermin or belongs to another
patient, the evaluation runs without it (so without a dose check) and the page says why.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Mapping

from service.dtr import DtrError, answered_decision
from service.fhir.client import Deadline
from service.fhir.gather import Gathered, PatientUnavailable, call_budget, gather, referenced_medications
from service.fhir.resources import normalise_quirks
from service.policy import evaluate
from service.wording import word
from service.policy.decision import Decision
from service.record import build_record
from service.record.model import PatientRecord
from service.record.resources import reference_of
from service.trigger import order_is_mecasermin

log = logging.getLogger(__name__)


class FhirUnavailable(Exception):
    """The patient could not be read from the EHR; the message says why (no patient data in it)."""


@dataclass(frozen=True)
class Workup:
    patient: Mapping[str, Any]            # the Patient resource as read
    coverage: Mapping[str, Any] | None    # the Coverage the record chose, as read
    order: Mapping[str, Any] | None       # the draft MedicationRequest under review, when usable
    order_note: str | None                # why a named order was not used
    record: PatientRecord
    decision: Decision
    gathered: Gathered
    attested: frozenset[str] = field(default=frozenset())   # references a completed questionnaire attests


def questionnaire_chart(workup: Workup) -> list[dict]:
    """The gathered chart without the order under review (the questionnaire takes that on its own)."""
    order = reference_of(workup.order)
    return [r for r in workup.gathered.resources if reference_of(r) != order]


def answered_work_up(deps, workup: Workup, qr: Mapping[str, Any]) -> Workup | None:
    """The work-up as a completed DTR questionnaire leaves it: the record and decision its answers give,
    by service/dtr's one path (the questionnaire's own steps take it), and the references they attest.
    None when the response no longer fits this chart's questionnaire (the policy changed since)."""
    try:
        read = answered_decision(questionnaire_chart(workup), workup.order, deps.policies, qr, workup.record.today,
                                 default_policy=deps.settings.default_policy, rxnorm_codes=deps.settings.rxnorm_codes,
                                 technical_gaps=workup.gathered.gaps)
    except DtrError as exc:
        log.warning("SMART DTR response no longer fits the questionnaire", extra={"status": exc.status})
        return None
    return replace(workup, record=read.record, decision=read.decision, attested=read.attested)


def fhir_request(iss: str, access_token: str, patient_id: str) -> dict[str, Any]:
    """A hook-shaped request for `service.fhir.gather`: nothing prefetched, everything fetched."""
    return {
        "fhirServer": iss,
        "fhirAuthorization": {"access_token": access_token, "token_type": "Bearer"},
        "context": {"patientId": patient_id},
        "prefetch": {},
    }


def read_order(deps, iss: str, access_token: str, patient_id: str, reference: str | None,
               resources: tuple[dict, ...]) -> tuple[dict | None, str | None]:
    """(the order, None) or (None, why it is not used); (None, None) when no order was named."""
    if not reference:
        return None, None
    result = deps.fhir_client.fetch_all(iss, access_token, {"order": reference},
                                        Deadline(deps.settings.fhir_deadline))["order"]
    body = result.body
    if result.error or not isinstance(body, dict):
        return None, f"the order {reference} could not be read ({result.error or 'no resource'})"
    if body.get("resourceType") != "MedicationRequest" or f"MedicationRequest/{body.get('id')}" != reference:
        return None, f"the EHR answered {reference} with another resource"
    order = normalise_quirks(body)
    subject = (order.get("subject") or {}).get("reference") if isinstance(order.get("subject"), dict) else None
    if not isinstance(subject, str) or subject.rstrip("/").split("/")[-2:] != ["Patient", patient_id]:
        return None, f"the order {reference} is for another patient"
    medications = _order_medications(deps, iss, access_token, patient_id, order, resources)
    if not order_is_mecasermin(order, medications, deps.settings.rxnorm_codes):
        unread = _unread_medication(order, medications)
        if unread:
            return None, f"the order's medication {unread} could not be read, so it cannot be told to be mecasermin"
        return None, f"the order {reference} is not for mecasermin"
    return order, None


def _order_medications(deps, iss: str, access_token: str, patient_id: str, order: dict,
                       resources: tuple[dict, ...]) -> dict[str, dict]:
    """The Medications the order may name by reference: from the chart, or read from the EHR as the hook
    does for a draft that names its drug only by `Medication/{id}` (service/fhir/gather.py)."""
    request = fhir_request(iss, access_token, patient_id)
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    request["prefetch"] = {"medications": {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": r} for r in resources if r.get("resourceType") == "Medication"]}}
    return referenced_medications(request, deps.settings, deps.fhir_client, call_budget(request, deps.settings))


def _unread_medication(order: Mapping[str, Any], medications: Mapping[str, dict]) -> str | None:
    """The `Medication/{id}` the order names only by reference and that could not be read, if any."""
    ref = order.get("medicationReference")
    if "medicationCodeableConcept" in order or not isinstance(ref, Mapping) or ref.get("display"):
        return None
    target = str(ref.get("reference") or "").split("/_history/")[0].rstrip("/")
    target = "/".join(target.split("/")[-2:])
    return target if target.startswith("Medication/") and target not in medications else None


def work_up(deps, iss: str, access_token: str, patient_id: str, order_reference: str | None,
            today: date) -> Workup:
    """Gather, build the record and evaluate; FhirUnavailable when the patient cannot be read."""
    try:
        gathered = gather(fhir_request(iss, access_token, patient_id), deps.settings, deps.fhir_client)
    except PatientUnavailable as exc:
        raise FhirUnavailable(str(exc)) from None
    for gap in gathered.gaps:
        if gap.startswith("patient:"):
            raise FhirUnavailable(f"the Patient could not be read from the EHR ({gap.split(':', 1)[1].strip()})")
    patient = next((r for r in gathered.resources
                    if r.get("resourceType") == "Patient" and r.get("id") == patient_id), None)
    if patient is None:
        raise FhirUnavailable("the EHR's Patient resource is not valid FHIR R4")
    if set(gathered.fetched) == {"patient"} and gathered.gaps:
        # Only the Patient came back: nothing to evaluate, most likely a scope or server problem.
        raise FhirUnavailable("the EHR answered for the Patient but for none of the searches (" +
                              "; ".join(gathered.gaps) + ")")
    order, order_note = read_order(deps, iss, access_token, patient_id, order_reference, gathered.resources)
    record = build_record(list(gathered.resources), order, today, rxnorm_codes=deps.settings.rxnorm_codes,
                          mg_per_ml=deps.policies.label.dosing.concentration_mg_per_ml,
                          categories=deps.policies.label.medication_categories)
    decision = word(evaluate(record, deps.policies, today, default_policy=deps.settings.default_policy,
                             technical_gaps=gathered.gaps, refused=gathered.refused))
    coverage = None
    if record.coverage is not None:
        coverage = next((r for r in gathered.resources
                         if f"{r.get('resourceType')}/{r.get('id')}" == record.coverage.reference), None)
    log.info("SMART work-up evaluated", extra={
        "determination": decision.determination, "policy": decision.policy.id, "gaps": len(gathered.gaps),
        "with_order": order is not None})
    return Workup(patient=patient, coverage=coverage, order=order, order_note=order_note, record=record,
                  decision=decision, gathered=gathered)
