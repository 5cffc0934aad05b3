"""Diagnoses from Conditions and from the order's reason, normalised to (system, code, display).

A Condition with several codings (ICD-10-CM and SNOMED) gives one Diagnosis per recognised
coding, plus one "text" Diagnosis when its `text` says something the codings do not, so that
text rules ("idiopathic short stature") see everything the clinician wrote.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from .codes import as_list, codings, icd10_normalise, status_code
from .dates import parse_date
from .model import Diagnosis
from .resources import ResourceIndex, reference_of

ACTIVE_STATUSES = frozenset({"active", "recurrence", "relapse"})
HISTORY_STATUSES = frozenset({"inactive", "remission", "resolved"})
_IGNORED_VERIFICATION = {"refuted": "refuted", "entered-in-error": "entered in error"}


def ignored_condition(resource: Mapping) -> str | None:
    """Why a Condition must not count at all: refuted or entered in error."""
    verification = status_code(resource.get("verificationStatus"))
    if verification in _IGNORED_VERIFICATION:
        return f"verification status {_IGNORED_VERIFICATION[verification]}"
    return None


def from_condition(resource: Mapping, reference: str, source: str = "condition") -> list[Diagnosis]:
    clinical = status_code(resource.get("clinicalStatus"))
    # No clinicalStatus: the Condition is on the list and nothing says it is over, so it counts as
    # current; that is the safe reading for contraindications such as a malignancy.
    active = clinical not in HISTORY_STATUSES
    onset, _ = parse_date(resource.get("onsetDateTime"), allow_partial=True)
    if onset is None and isinstance(resource.get("onsetPeriod"), dict):
        onset, _ = parse_date(resource["onsetPeriod"].get("start"), allow_partial=True)
    recorded, _ = parse_date(resource.get("recordedDate"), allow_partial=True)
    return from_concept(resource.get("code"), reference, source, clinical_status=clinical, active=active,
                        onset=onset, recorded=recorded,
                        verification_status=status_code(resource.get("verificationStatus")))


def from_concept(concept: Any, reference: str, source: str, *, clinical_status: str | None = None,
                 active: bool = True, onset: date | None = None, recorded: date | None = None,
                 verification_status: str | None = None) -> list[Diagnosis]:
    common = dict(reference=reference, source=source, clinical_status=clinical_status, active=active,
                  onset=onset, recorded=recorded, verification_status=verification_status)
    out: list[Diagnosis] = []
    displays: set[str] = set()
    for system, code, display in codings(concept):
        if system == "icd10cm":
            normalised = icd10_normalise(code)
            if normalised is None:
                continue
            out.append(Diagnosis(system="icd10cm", code=normalised, display=display, **common))
        elif system == "snomed":
            out.append(Diagnosis(system="snomed", code=code, display=display, **common))
        else:
            continue
        if display:
            displays.add(display.strip().lower())
    text = concept.get("text") if isinstance(concept, dict) else None
    if isinstance(text, str) and text.strip() and text.strip().lower() not in displays:
        out.append(Diagnosis(system="text", code=None, display=text.strip(), **common))
    elif not out:
        # Codings from systems this service does not read still carry a readable display.
        for _, _, display in codings(concept):
            if display:
                out.append(Diagnosis(system="text", code=None, display=display, **common))
                break
    return out


def from_order(order: Mapping, order_reference: str,
               index: ResourceIndex) -> tuple[list[Diagnosis], list[tuple[str, str]]]:
    """The order's indication: `reasonCode` (an array, or one object from the CDS Hooks sandbox)
    and `reasonReference` resolved to Conditions. Returns (diagnoses, skipped)."""
    out: list[Diagnosis] = []
    skipped: list[tuple[str, str]] = []
    for concept in as_list(order.get("reasonCode")):
        out += from_concept(concept, f"{order_reference}#reasonCode", "order-reason")
    for ref in as_list(order.get("reasonReference")):
        if not isinstance(ref, dict):
            continue
        target = index.resolve(ref, container=order)
        if isinstance(target, dict) and target.get("resourceType") == "Condition":
            target_ref = reference_of(target) if not str(ref.get("reference", "")).startswith("#") \
                else f"{order_reference}{ref['reference']}"
            why = ignored_condition(target)
            if why:
                skipped.append((target_ref, f"order reason not used: {why}"))
                continue
            out += from_condition(target, target_ref, source="order-reason")
        elif isinstance(ref.get("display"), str) and ref["display"].strip():
            shown = ref["reference"] if isinstance(ref.get("reference"), str) else f"{order_reference}#reasonReference"
            out.append(Diagnosis(system="text", code=None, display=ref["display"].strip(), reference=shown,
                                 source="order-reason", clinical_status=None, active=True))
        else:
            skipped.append((str(ref.get("reference") or f"{order_reference}#reasonReference"),
                            "order reason reference could not be resolved and has no display"))
    return out, skipped
