"""Other therapy on file: prior mecasermin, GH products, antidiabetic agents, systemic steroids.

Products are recognised by name (ingredient or brand) in the medication's text and codings; the
name lists are data (label.yaml `medication_categories`, read by service/record/categories.py). Prior mecasermin is recognised as the trigger recognises the order.
Every source a chart uses is read (MedicationRequest, MedicationStatement, MedicationDispense,
MedicationAdministration) by its own status rules, with the period taken where the source gives
one (docs/clinical-rules.md, "Medication sources").
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Iterable, Mapping

from .. import trigger   # a module, not a name: trigger imports service.record.codes
from .codes import as_list, codings, concept_text, concept_words
from .course import course_end
from .dates import day_of
from .categories import MedicationCategories
from .model import MedicationFact
from .resources import ResourceIndex

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


# Status rules per medication source (docs/clinical-rules.md, "Medication sources").
# TAKEN: statuses showing mecasermin was actually started (prior therapy → re-authorization).
# NOT_TAKEN: records set aside whatever the medication (errors, plans that never started).
# CURRENT: statuses that make a therapy current (interactions, combination with GH); a completed
# dispense is current also while its days' supply lasts.
_TAKEN = {
    "MedicationRequest": frozenset({"active", "completed", "stopped", "on-hold"}),
    "MedicationStatement": frozenset({"active", "completed", "stopped", "on-hold"}),
    "MedicationDispense": frozenset({"completed", "in-progress", "stopped"}),
    "MedicationAdministration": frozenset({"completed", "in-progress", "stopped", "on-hold"}),
}
_NOT_TAKEN = {
    "MedicationRequest": frozenset({"entered-in-error", "cancelled"}),
    "MedicationStatement": frozenset({"entered-in-error", "not-taken"}),
    "MedicationDispense": frozenset({"entered-in-error", "cancelled", "declined"}),
    "MedicationAdministration": frozenset({"entered-in-error", "not-done"}),
}
_CURRENT = {
    "MedicationRequest": frozenset({"active", "on-hold", "draft"}),
    "MedicationStatement": frozenset({"active", "intended", "on-hold"}),
    "MedicationDispense": frozenset({"preparation", "in-progress", "on-hold"}),
    "MedicationAdministration": frozenset({"in-progress", "on-hold"}),
}
SOURCES = tuple(_TAKEN)


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


def read_medication(resource: Mapping, reference: str, index: ResourceIndex, rxnorm_codes: Iterable[str],
                    today: date | None, categories: MedicationCategories) -> tuple[MedicationFact | None, str | None]:
    """(fact, None), (None, reason it was set aside) or (None, None) when it is not of interest."""
    source = resource.get("resourceType") if resource.get("resourceType") in _TAKEN else "MedicationRequest"
    status = resource.get("status") if isinstance(resource.get("status"), str) else None
    text, words = medication_words(resource, index)
    medications = index.of_type("Medication") if isinstance(resource.get("medicationReference"), dict) else None
    if trigger.order_is_mecasermin(resource, medications, rxnorm_codes):
        category = "mecasermin"
        if status not in _TAKEN[source]:
            return None, f"mecasermin {source} with status {status or 'missing'} is not prior therapy"
    else:
        found = categories.category_of(words)
        if found is None:
            return None, None
        category = found.id
        if status in _NOT_TAKEN[source]:
            return None, f"{category} {source} with status {status}"
        if found.systemic_only and not is_systemic(resource, words):
            return None, None
    start, when, end = _course(resource)
    # A partial date ("2024-12") stands for a month or a year: read again at its last day (date_last,
    # end_last), so a rule measuring the course can tell when the day would change its answer.
    _, when_last, end_last = _course(resource, last=True)
    active = status in _CURRENT[source] or (
        source == "MedicationDispense" and status == "completed" and today is not None
        and end is not None and end >= today)
    return MedicationFact(category=category, text=text or words, reference=reference, status=status,
                          active=active, date=when, source=source, start=start, end=end,
                          date_last=when_last, end_last=end_last), None


def _course(resource: Mapping, last: bool = False) -> tuple[date | None, date | None, date | None]:
    """(start of the period taken, when the therapy began, when the course ends), partial dates read at
    their first day, or their last with `last`."""
    start, end = _period_of(resource, last)
    when = _date_of(resource, start, last)
    return start, when, end if end is not None else course_end(resource, when, last)


def _period_of(resource: Mapping, last: bool = False) -> tuple[date | None, date | None]:
    """The period the medication was taken, when the source records one: the effective period or
    time (MedicationStatement, MedicationAdministration), or the day handed over and the days'
    supply (MedicationDispense). A request records when it was ordered, not taken: (None, None)."""
    def _day(value: Any) -> date | None:
        return day_of(value, last)
    if resource.get("resourceType") == "MedicationDispense":
        handed = _day(resource.get("whenHandedOver"))
        supply = resource.get("daysSupply")
        days = supply.get("value") if isinstance(supply, dict) else None
        unit = str(supply.get("code") or supply.get("unit") or "d").lower() if isinstance(supply, dict) else ""
        if handed and isinstance(days, (int, float)) and not isinstance(days, bool) and unit in ("d", "day", "days") \
                and 0 <= days < 3660:
            return handed, handed + timedelta(days=int(days))
        return handed, None
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        return _day(period.get("start")), _day(period.get("end"))
    when = _day(resource.get("effectiveDateTime"))
    return when, when if resource.get("resourceType") == "MedicationAdministration" else None


def _date_of(resource: Mapping, start: date | None, last: bool = False) -> Any:
    """When the therapy began, as best the resource says: the period it was taken (effective
    period or time, the day a dispense was handed over), else when it was ordered (authoredOn,
    dispenseRequest.validityPeriod.start — MedicationRequest; whenPrepared — dispense), and only
    last when the statement was recorded (dateAsserted), which is often long after the therapy
    started."""
    if start is not None:
        return start
    dispense = resource.get("dispenseRequest")
    validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    for value in (resource.get("effectiveDateTime"), resource.get("authoredOn"),
                  validity.get("start") if isinstance(validity, dict) else None,
                  resource.get("whenPrepared"), resource.get("dateAsserted")):
        when = day_of(value, last)
        if when is not None:
            return when
    return None


def treatment_start(medications: Iterable[MedicationFact]) -> date | None:
    """The earliest date of prior mecasermin therapy on file (the draft order is never in the list)."""
    dates = [m.date for m in medications if m.category == "mecasermin" and m.date is not None]
    return min(dates) if dates else None
