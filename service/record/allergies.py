"""Allergies that contraindicate mecasermin: the drug itself and every inactive ingredient of the vial.

The label contraindicates hypersensitivity to mecasermin or any inactive ingredient (benzyl alcohol,
polysorbate 20, sodium chloride, glacial acetic acid, sodium acetate), and a previous severe
hypersensitivity to Increlex. So a record counts whatever its clinical status when it is severe
(criticality high, a reaction recorded as severe, or anaphylaxis); a resolved or inactive record that
is not severe does not; a refuted or entered-in-error record never does (docs/clinical-rules.md,
"Contraindications and label wording").
"""
from __future__ import annotations

import re
from typing import Mapping

from .codes import as_list, codings, concept_words, status_code
from .dates import parse_date
from .model import Allergy

# substance → its name in findings, the codes and the words that name it. SNOMED 418157000 is the
# mecasermin substance concept; the UNIIs are the FDA substance identifiers (FDA GSRS). An allergy to
# mecasermin rinfabate (Iplex) matches too: it carries the same rhIGF-1 molecule, and for a
# contraindication a false alarm is the cheaper error.
SUBSTANCES: dict[str, dict] = {
    "mecasermin": {
        "name": "mecasermin",
        "codes": {("snomed", "418157000"), ("unii", "7GR9I2683O")},
        "text": re.compile(r"\b(mecasermin|increlex|rh-?igf-?1)\b", re.IGNORECASE),
    },
    "benzyl-alcohol": {
        "name": "benzyl alcohol",
        "codes": {("unii", "LKG8494WBH")},
        "text": re.compile(r"\bbenzyl\s+alcohol\b", re.IGNORECASE),
    },
    "polysorbate-20": {
        "name": "polysorbate 20",
        "codes": {("unii", "7T1F30V5YH")},
        # "polysorbate" alone may be polysorbate 20; polysorbate 40/60/80 are other substances.
        "text": re.compile(r"\b(polysorbate|tween)(?:[\s-]*20\b|s?\b(?![\s-]*\d))", re.IGNORECASE),
    },
    "sodium-chloride": {
        "name": "sodium chloride",
        "codes": {("unii", "451W47IQ8X")},
        "text": re.compile(r"\bsodium\s+chloride\b|\bNaCl\b", re.IGNORECASE),
    },
    "acetic-acid": {
        "name": "glacial acetic acid",
        "codes": {("unii", "Q40Q9N063P")},
        "text": re.compile(r"\bacetic\s+acid\b", re.IGNORECASE),
    },
    "sodium-acetate": {
        "name": "sodium acetate",
        "codes": {("unii", "4550K0SC9B")},
        "text": re.compile(r"\bsodium\s+acetate\b", re.IGNORECASE),
    },
}
_IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_PAST_CLINICAL = frozenset({"inactive", "resolved"})
_ANAPHYLAXIS = re.compile(r"\banaphyla", re.IGNORECASE)
_ANAPHYLAXIS_SNOMED = frozenset({"39579001"})


def substance_name(substance: str) -> str:
    return SUBSTANCES.get(substance, {}).get("name", substance.replace("-", " "))


def substance_of(concept: object) -> str | None:
    for name, spec in SUBSTANCES.items():
        for system, code, _ in codings(concept):
            if (system, code.upper() if system == "unii" else code) in spec["codes"]:
                return name
        if spec["text"].search(concept_words(concept)):
            return name
    return None


def is_severe(resource: Mapping) -> bool:
    """Criticality high, a reaction recorded as severe, or anaphylaxis among the manifestations."""
    if resource.get("criticality") == "high":
        return True
    for reaction in as_list(resource.get("reaction")):
        if not isinstance(reaction, dict):
            continue
        if reaction.get("severity") == "severe":
            return True
        for manifestation in as_list(reaction.get("manifestation")):
            if any(system == "snomed" and code in _ANAPHYLAXIS_SNOMED for system, code, _ in codings(manifestation)):
                return True
            if _ANAPHYLAXIS.search(concept_words(manifestation)):
                return True
    return False


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
    severe = is_severe(resource)
    if clinical in _PAST_CLINICAL and not severe:
        return [], f"allergy clinical status {clinical}, not recorded as severe"
    recorded, _ = parse_date(resource.get("recordedDate") or resource.get("onsetDateTime"), allow_partial=True)
    criticality = resource.get("criticality") if isinstance(resource.get("criticality"), str) else None
    return [Allergy(substance=name, text=text, reference=reference, criticality=criticality,
                    verification_status=verification, recorded=recorded, clinical_status=clinical, severe=severe)
            for name, text in found.items()], None
