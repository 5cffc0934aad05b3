"""Is this order mecasermin? (docs/clinical-rules.md)

Pure and cheap: this runs on every order-select keystroke, so a non-mecasermin order must be
recognised in microseconds with no FHIR request. Mecasermin rinfabate (Iplex) is a different
product and never matches.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

from service.record.codes import canonical_uri, system_name

NDC_SYSTEM = canonical_uri("ndc")
HCPCS_MECASERMIN = "J2170"

# Labeler-product-package, compared as 11-digit 5-4-2 strings (hyphens removed, zero-padded).
MECASERMIN_NDC11 = frozenset({"15054104005", "71863021604"})

_NAME = re.compile(r"\b(mecasermin|increlex|rh-?igf-?1)\b", re.IGNORECASE)
_LOOKALIKE = re.compile(r"\b(rinfabate|iplex)\b", re.IGNORECASE)


def ndc_to_11(code: str) -> str | None:
    """Normalise a 10- or 11-digit NDC (with or without hyphens) to 11 digits (5-4-2)."""
    parts = code.strip().split("-")
    if len(parts) == 3:
        widths = (5, 4, 2)
        if any(len(p) > w or not p.isdigit() for p, w in zip(parts, widths)):
            return None
        return "".join(p.zfill(w) for p, w in zip(parts, widths))
    digits = code.strip()
    return digits if len(digits) == 11 and digits.isdigit() else None


def names_mecasermin(text: str | None) -> bool:
    return isinstance(text, str) and bool(_NAME.search(text)) and not _LOOKALIKE.search(text)


def codeable_concept_is_mecasermin(concept: Mapping | None, rxnorm_codes: Iterable[str] = ()) -> bool:
    if not isinstance(concept, Mapping):
        return False
    if _LOOKALIKE.search(str(concept.get("text") or "")):
        return False
    if names_mecasermin(concept.get("text")):
        return True
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return False
    rxnorm = frozenset(rxnorm_codes)
    for coding in codings:
        if isinstance(coding, Mapping) and _coding_is_mecasermin(coding, rxnorm):
            return True
    return False


def _coding_is_mecasermin(coding: Mapping, rxnorm: frozenset[str]) -> bool:
    system, code = coding.get("system"), coding.get("code")
    if _LOOKALIKE.search(str(coding.get("display") or "")):
        return False
    if names_mecasermin(coding.get("display")):
        return True
    if not isinstance(code, str):
        return False
    # Any spelling of the system (URI or OID, as C-CDA-converted interfaces send) counts.
    name = system_name(system)
    if name == "ndc":
        return ndc_to_11(code) in MECASERMIN_NDC11
    if name == "hcpcs":
        return code.strip().upper() == HCPCS_MECASERMIN
    return name == "rxnorm" and code.strip() in rxnorm


def order_is_mecasermin(
    order: Mapping,
    medications: Mapping[str, Mapping] | None = None,
    rxnorm_codes: Iterable[str] = (),
) -> bool:
    """True when a MedicationRequest/MedicationStatement names mecasermin.

    `medications` maps "Medication/id" (and "#id" for contained ones, which this function adds
    itself) to Medication resources, for orders that use `medicationReference`.
    """
    if not isinstance(order, Mapping):
        return False
    if codeable_concept_is_mecasermin(order.get("medicationCodeableConcept"), rxnorm_codes):
        return True
    ref = order.get("medicationReference")
    if not isinstance(ref, Mapping):
        return False
    if names_mecasermin(ref.get("display")):
        return True
    medication = _resolve_medication(str(ref.get("reference") or ""), order, medications or {})
    return medication is not None and codeable_concept_is_mecasermin(medication.get("code"), rxnorm_codes)


def _resolve_medication(reference: str, order: Mapping, medications: Mapping[str, Mapping]) -> Mapping | None:
    if reference.startswith("#"):
        for contained in order.get("contained") or ():
            if isinstance(contained, Mapping) and contained.get("id") == reference[1:]:
                return contained
        return None
    if reference in medications:
        return medications[reference]
    # Absolute references ("https://ehr/fhir/Medication/1") are matched on their last two segments.
    tail = "/".join(reference.rstrip("/").split("/")[-2:])
    return medications.get(tail)
