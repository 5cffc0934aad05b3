"""Da Vinci CRD STU 2.2 coverage information: a systemAction that annotates the draft order.

The mapping from our determination to CRD codes is a table, so that a reviewer can check it
against the issue and the CRD invariants in one glance:
- not-covered ⇒ no pa-needed;  conditional ⇒ info-needed;  info-needed OTH ⇒ reason;
- doc-purpose ⇒ reason;  indeterminate ⇒ reason;  questionnaire ⇒ doc-needed.
"""
from __future__ import annotations

import calendar
from datetime import date

from cards import text
from cards.assessment import crd_key

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
REASON_SYSTEM = "urn:mecasermin-cds:CodeSystem:coverage-assertion-reason"

# determination → (covered, pa-needed, doc-needed, info-needed, doc-purpose)
CRD_CODES: dict[str, tuple[str, str | None, str | None, str | None, str | None]] = {
    "meets-criteria": ("covered", "auth-needed", "clinical", None, "withpa"),
    "documentation-needed": ("conditional", "auth-needed", "clinical", "OTH", "withpa"),
    "does-not-meet": ("not-covered", None, None, None, None),
    "technical": ("indeterminate", None, None, None, None),
    # The patient's plan has no policy file: only the label's indication was checked, so nothing
    # can be said about this plan's coverage beyond "it depends on its criteria".
    "plan-criteria-unknown": ("conditional", None, None, "OTH", None),
}


def needs_documentation(decision) -> bool:
    """Does the CRD answer say `doc-needed` (the only answers that may carry a DTR questionnaire)?"""
    return CRD_CODES[crd_key(decision)][2] is not None


def coverage_information(decision, coverage_reference: str, today: date, assertion_id: str,
                         questionnaire: str | None = None) -> dict:
    """The ext-coverage-information extension for one decision; `questionnaire`: the canonical of the
    policy's DTR questionnaire (docs/dtr.md), sent only with doc-needed (CRD invariant)."""
    key = crd_key(decision)
    covered, pa_needed, doc_needed, info_needed, doc_purpose = CRD_CODES[key]
    parts: list[dict] = [
        {"url": "coverage", "valueReference": {"reference": coverage_reference}},
        {"url": "covered", "valueCode": covered},
    ]
    if pa_needed:
        parts.append({"url": "pa-needed", "valueCode": pa_needed})
    if doc_needed:
        parts.append({"url": "doc-needed", "valueCode": doc_needed})
        if questionnaire:
            parts.append({"url": "questionnaire", "valueCanonical": questionnaire})
    if doc_purpose:
        parts.append({"url": "doc-purpose", "valueCode": doc_purpose})
    if info_needed:
        parts.append({"url": "info-needed", "valueCode": info_needed})
    if decision.hcpcs:   # the policy's own code (policy file `coding.hcpcs`)
        coding = {"system": HCPCS, "code": decision.hcpcs}
        if decision.hcpcs_display:
            coding["display"] = decision.hcpcs_display
        parts.append({"url": "billingCode", "valueCoding": coding})
    parts.append({"url": "reason", "valueCodeableConcept": _reason(decision, key)})
    parts.append({"url": "date", "valueDate": today.isoformat()})
    parts.append({"url": "coverage-assertion-id", "valueString": assertion_id})
    if covered != "not-covered" and key != "technical" and decision.approval_months:
        parts.append({"url": "expiry-date", "valueDate": add_months(today, decision.approval_months).isoformat()})
    return {"url": EXTENSION_URL, "extension": parts}


def _reason(decision, key: str) -> dict:
    code, display = text.CRD_REASONS[key]
    return {"coding": [{"system": REASON_SYSTEM, "code": code, "display": display}],
            "text": text.crd_reason_text(decision, key)}


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def annotated_order(order: dict, extension: dict) -> dict:
    """A copy of the draft order carrying the coverage-information extension (replacing an older one)."""
    annotated = dict(order)
    kept = [e for e in order.get("extension") or () if isinstance(e, dict) and e.get("url") != EXTENSION_URL]
    annotated["extension"] = kept + [extension]
    return annotated
