"""Allergies that contraindicate mecasermin: the drug itself and its preservative benzyl alcohol."""
from __future__ import annotations

import re
from typing import Mapping

from .codes import as_list, codings, concept_words, status_code
from .dates import parse_date
from .model import Allergy

# substance → the codes and words that name it. SNOMED 418157000 is the mecasermin substance
# concept; the UNIIs are the FDA substance identifiers (spec §2). An allergy to mecasermin
# rinfabate (Iplex) matches too: it carries the same rhIGF-1 molecule, and for a
# contraindication a false alarm is the cheaper error.
SUBSTANCES: dict[str, dict] = {
    "mecasermin": {
        "codes": {("snomed", "418157000"), ("unii", "7GR9I2683O")},
        "text": re.compile(r"\b(mecasermin|increlex|rh-?igf-?1)\b", re.IGNORECASE),
    },
    "benzyl-alcohol": {
        "codes": {("unii", "LKG8494WBH")},
        "text": re.compile(r"\bbenzyl\s+alcohol\b", re.IGNORECASE),
    },
}
_IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_IGNORED_CLINICAL = frozenset({"inactive", "resolved"})


def substance_of(concept: object) -> str | None:
    for name, spec in SUBSTANCES.items():
        for system, code, _ in codings(concept):
            if (system, code.upper() if system == "unii" else code) in spec["codes"]:
                return name
        if spec["text"].search(concept_words(concept)):
            return name
    return None


def read_allergy(resource: Mapping, reference: str) -> tuple[list[Allergy], str | None]:
    """(relevant allergies, reason the resource is ignored). Unrelated allergies give ([], None)."""
    concepts = [resource.get("code")]
    for reaction in as_list(resource.get("reaction")):
        if isinstance(reaction, dict):
            concepts.append(reaction.get("substance"))
    found: dict[str, str] = {}
    for concept in concepts:
        name = substance_of(concept)
        if name and name not in found:
            found[name] = concept_words(concept)
    if not found:
        return [], None
    verification = status_code(resource.get("verificationStatus"))
    clinical = status_code(resource.get("clinicalStatus"))
    if verification in _IGNORED_VERIFICATION:
        return [], f"allergy verification status {verification}"
    if clinical in _IGNORED_CLINICAL:
        return [], f"allergy clinical status {clinical}"
    recorded, _ = parse_date(resource.get("recordedDate") or resource.get("onsetDateTime"), allow_partial=True)
    criticality = resource.get("criticality") if isinstance(resource.get("criticality"), str) else None
    return [Allergy(substance=name, text=text, reference=reference, criticality=criticality,
                    verification_status=verification, recorded=recorded) for name, text in found.items()], None
