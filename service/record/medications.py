"""Other therapy on file: prior mecasermin, GH products, antidiabetic agents, systemic steroids.

Products are recognised by name (ingredient or brand) in the medication's text and codings; the
name lists are data below. Prior mecasermin is recognised as the trigger recognises the order.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable, Mapping

from ..trigger import order_is_mecasermin
from .codes import as_list, codings, concept_text, concept_words
from .course import course_end
from .dates import parse_date
from .model import MedicationFact
from .resources import ResourceIndex

SOMATROPIN_NAMES = (
    "somatropin", "somatotropin", "genotropin", "norditropin", "humatrope", "omnitrope", "nutropin",
    "saizen", "zomacton", "serostim", "zorbtive", "accretropin", "tev-tropin", "somapacitan", "sogroya",
    "lonapegsomatropin", "skytrofa", "somatrogon", "ngenla",
)
ANTIDIABETIC_NAMES = (
    # insulins (any "insulin …" product) and common brand names
    "insulin", "humalog", "novolog", "lantus", "levemir", "tresiba", "basaglar", "toujeo", "humulin",
    "novolin", "apidra", "fiasp", "admelog", "lyumjev", "semglee", "afrezza",
    # biguanide, sulfonylureas, meglitinides
    "metformin", "glucophage", "glipizide", "glucotrol", "glyburide", "glibenclamide", "glynase", "diabeta",
    "glimepiride", "amaryl", "gliclazide", "tolbutamide", "chlorpropamide", "tolazamide",
    "repaglinide", "nateglinide",
    # thiazolidinediones, DPP-4 inhibitors, SGLT2 inhibitors, GLP-1 / GIP agonists, others
    "pioglitazone", "rosiglitazone", "sitagliptin", "januvia", "saxagliptin", "linagliptin", "alogliptin",
    "empagliflozin", "jardiance", "dapagliflozin", "farxiga", "canagliflozin", "ertugliflozin",
    "exenatide", "liraglutide", "victoza", "dulaglutide", "trulicity", "semaglutide", "ozempic",
    "rybelsus", "lixisenatide", "tirzepatide", "mounjaro", "acarbose", "miglitol", "pramlintide",
)
CORTICOSTEROID_NAMES = (
    "prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone", "cortisone",
    "betamethasone", "triamcinolone", "budesonide", "deflazacort", "medrol", "solu-medrol", "decadron",
    "orapred", "millipred", "cortef", "solu-cortef", "emflaza",
)

# Routes and dose forms that keep a corticosteroid local (inhaled, nasal, skin, eye, ear, joint,
# rectal): those are not the chronic systemic exposure that causes secondary IGF-1 deficiency.
_LOCAL_ROUTE_SNOMED = frozenset({
    "447694001",  # respiratory tract route (inhaled)
    "46713006",   # nasal route
    "6064005",    # topical route
    "448598008",  # cutaneous route
    "45890007",   # transdermal route
    "54485002",   # ophthalmic route
    "10547007",   # otic route
    "37161004",   # rectal route
    "12130007",   # intra-articular route
})
_SYSTEMIC_ROUTE_SNOMED = frozenset({"26643006", "47625008", "78421000", "34206005"})  # oral, IV, IM, SC
_LOCAL_WORDS = re.compile(
    r"\b(inhal\w*|nebuli[sz]\w*|respules?|hfa|aerosol|nasal|intranasal|spray|topical|cream|ointment|lotion|gel|"
    r"foam|shampoo|cutaneous|transdermal|ophthalmic|eye|otic|ear|rectal|enema|suppositor\w*|"
    r"intra-?articular|dental|paste)\b", re.IGNORECASE)
_SYSTEMIC_WORDS = re.compile(r"\b(oral|by mouth|po|intravenous|iv|intramuscular|im|subcutaneous)\b", re.IGNORECASE)


# Names are matched as whole words of the medication text (one tokenising pass, then set look-ups:
# a regex alternation of ~90 names per medication would dominate the time to build a record).
# Two families are open-ended: every "insulin …" and every "…somatropin" INN (lonapegsomatropin).
_CATEGORY_WORDS = (
    ("somatropin", frozenset(SOMATROPIN_NAMES)),
    ("antidiabetic", frozenset(ANTIDIABETIC_NAMES)),
    ("systemic-corticosteroid", frozenset(CORTICOSTEROID_NAMES)),
)
_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_GH_PHRASE = re.compile(r"\bgrowth hormone\b(?!\s*[- ]?(releas|stimulat|test|deficien|receptor|antagonist|level))",
                        re.IGNORECASE)


def _tokens(words: str) -> set[str]:
    tokens = set(_WORD.findall(words.lower()))
    for token in [t for t in tokens if "-" in t]:
        tokens.update(token.split("-"))
    return tokens


def category_of(words: str) -> str | None:
    tokens = _tokens(words)
    for category, names in _CATEGORY_WORDS:
        if tokens & names:
            return category
        if category == "somatropin" and any(t.endswith("somatropin") for t in tokens):
            return category
        if category == "antidiabetic" and any(t.startswith("insulin") for t in tokens):
            return category
    return "somatropin" if "growth" in tokens and _GH_PHRASE.search(words) else None


_MECASERMIN_PRIOR = frozenset({"active", "completed", "stopped", "on-hold"})
_NOT_TAKEN = frozenset({"entered-in-error", "cancelled", "not-taken"})
_CURRENT = frozenset({"active", "on-hold", "draft", "intended"})


def medication_words(resource: Mapping, index: ResourceIndex) -> tuple[str, str]:
    """(display text, all words) of the medication a request/statement names."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept_text(concept), concept_words(concept)
    ref = resource.get("medicationReference")
    if isinstance(ref, dict):
        medication = index.resolve(ref, container=resource)
        display = ref.get("display") if isinstance(ref.get("display"), str) else ""
        if isinstance(medication, dict):
            code = medication.get("code")
            return concept_text(code) or display, " | ".join(filter(None, [display, concept_words(code)]))
        return display, display
    return "", ""


def is_systemic(resource: Mapping, words: str) -> bool:
    """Whether a corticosteroid is given systemically: the route says so, or nothing marks it as local."""
    dosages = as_list(resource.get("dosageInstruction")) + as_list(resource.get("dosage"))
    route_words = []
    for dosage in dosages:
        if not isinstance(dosage, dict):
            continue
        for system, code, _ in codings(dosage.get("route")):
            if system == "snomed" and code in _SYSTEMIC_ROUTE_SNOMED:
                return True
            if system == "snomed" and code in _LOCAL_ROUTE_SNOMED:
                return False
        route_words.append(concept_words(dosage.get("route")))
        if isinstance(dosage.get("text"), str):
            route_words.append(dosage["text"])
    route_text = " ".join(route_words)
    if _SYSTEMIC_WORDS.search(route_text):
        return True
    return not (_LOCAL_WORDS.search(route_text) or _LOCAL_WORDS.search(words))


def read_medication(resource: Mapping, reference: str, index: ResourceIndex,
                    rxnorm_codes: Iterable[str]) -> tuple[MedicationFact | None, str | None]:
    """(fact, None), (None, reason it was set aside) or (None, None) when it is not of interest."""
    status = resource.get("status") if isinstance(resource.get("status"), str) else None
    text, words = medication_words(resource, index)
    medications = index.of_type("Medication") if isinstance(resource.get("medicationReference"), dict) else None
    if order_is_mecasermin(resource, medications, rxnorm_codes):
        category = "mecasermin"
        if status not in _MECASERMIN_PRIOR:
            rtype = resource.get("resourceType")
            return None, f"mecasermin {rtype} with status {status or 'missing'} is not prior therapy"
    else:
        category = category_of(words)
        if category is None:
            return None, None
        if status in _NOT_TAKEN:
            return None, f"{category} medication with status {status}"
        if category == "systemic-corticosteroid" and not is_systemic(resource, words):
            return None, None
    when = _date_of(resource)
    return MedicationFact(category=category, text=text or words, reference=reference, status=status,
                          active=status in _CURRENT, date=when, until=course_end(resource, when)), None


def _date_of(resource: Mapping) -> Any:
    """When the therapy began, as best the resource says: the period it was taken
    (effectivePeriod.start, effectiveDateTime — MedicationStatement), else when it was ordered
    (authoredOn, dispenseRequest.validityPeriod.start — MedicationRequest), and only last when the
    statement was recorded (dateAsserted), which is often long after the therapy started."""
    period = resource.get("effectivePeriod")
    dispense = resource.get("dispenseRequest")
    validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    candidates = (
        period.get("start") if isinstance(period, dict) else None,
        resource.get("effectiveDateTime"),
        resource.get("authoredOn"),
        validity.get("start") if isinstance(validity, dict) else None,
        resource.get("dateAsserted"),
    )
    for value in candidates:
        when, _ = parse_date(value, allow_partial=True)
        if when is not None:
            return when
    return None


def treatment_start(medications: Iterable[MedicationFact]) -> date | None:
    """The earliest date of prior mecasermin therapy on file (the draft order is never in the list)."""
    dates = [m.date for m in medications if m.category == "mecasermin" and m.date is not None]
    return min(dates) if dates else None
