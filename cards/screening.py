"""The short-stature screening card (service.screening decides; this module words it).

One info card. When the chart already shows a qualifying IGF-1 and a normal GH stimulation test, its
suggestion drafts a mecasermin order at the label's starting dose (the order-select and order-sign
services then check it); otherwise its suggestions order the work-up (IGF-1, GH stimulation, bone age).
Label facts (starting range, concentration, source) come from the finding's `label` (label.yaml).
"""
from __future__ import annotations

import copy
import uuid
from datetime import date

from cards.markdown import escape_markdown as md, plain_text
from cards.response import without_empty
from cards.suggestions import SUBCUTANEOUS, UCUM, create_test_action
from cards.text import fmt_date
from service.policy.compare import centile_from_sds
from service.policy.tests_to_order import TESTS
from service.screening import ScreeningFinding
from service.trigger import NDC_SYSTEM
from service.wording.evidence import evidence_value
from service.wording.numbers import centile, number, signed

CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
OVERRIDE_SYSTEM = "urn:mecasermin-cds:CodeSystem:override-reason"
SOURCE_LABEL = "Mecasermin (Increlex) short-stature screen"

MEDICATION = {
    "coding": [{"system": NDC_SYSTEM, "code": "15054-1040-05", "display": "Increlex 40 mg/4 mL vial"}],
    "text": "mecasermin 10 MG/ML Injectable Solution [Increlex]",
}
OVERRIDE_REASONS = (
    ("cause-known", "Short stature has a known cause other than IGF-1 deficiency"),
    ("evaluation-under-way", "Growth evaluation already under way"),
    ("height-error", "Height on file is a measurement or entry error"),
)
ORDER_NOTE = ("Drafted from the short-stature screening card: the chart shows a qualifying IGF-1 and a normal GH "
              "stimulation test. Confirm the diagnosis of severe primary IGF-1 deficiency before signing.")


def draft_order(finding: ScreeningFinding, today: date, requester: str | None = None, base: dict | None = None) -> dict:
    """A draft mecasermin MedicationRequest at the starting dose (R4).

    `base`: an empty draft order to fill in (an order-entry form opened without a drug), whose id,
    subject and other elements are kept; otherwise a new order with a fresh id.
    """
    order = without_empty(base) if base else {
        "resourceType": "MedicationRequest", "id": f"mecasermin-{uuid.uuid4().hex[:12]}"}
    order.update({"status": "draft", "intent": order.get("intent") or "order",
                  "medicationCodeableConcept": copy.deepcopy(MEDICATION)})
    order.setdefault("subject", {"reference": finding.patient_reference})
    order.setdefault("authoredOn", today.isoformat())
    if requester and requester.split("/", 1)[0] in ("Practitioner", "PractitionerRole"):
        order.setdefault("requester", {"reference": requester})
    dosage = {"text": dose_text(finding), "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
              "route": copy.deepcopy(SUBCUTANEOUS)}
    if finding.dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": finding.dose.dose_mg, "unit": "mg", "system": UCUM,
                                                   "code": "mg"}}]
    order["dosageInstruction"] = [dosage]
    order["note"] = [{"text": ORDER_NOTE}]
    return order


def _start(finding: ScreeningFinding) -> str:
    low, high = finding.label.start_range_mg_per_kg
    return f"{number(low)}–{number(high)} mg/kg"


def dose_text(finding: ScreeningFinding) -> str:
    dose, label = finding.dose, finding.label
    if dose is None:
        return (f"{number(label.start_range_mg_per_kg[0])} mg/kg subcutaneously twice daily, within 20 minutes of a "
                f"meal or snack ({finding.weight_note})")
    return (f"{number(dose.dose_mg)} mg ({number(dose.volume_ml)} mL of {number(label.concentration_mg_per_ml)} mg/mL) "
            f"subcutaneously twice daily, within 20 minutes of a meal or snack (starting dose "
            f"{number(round(dose.mg_per_kg, 3), 3)} mg/kg for {number(dose.weight.value)} kg on {fmt_date(dose.weight.date)})")


def summary(finding: ScreeningFinding) -> str:
    height = finding.height
    age = height.age_years if height.age_years is not None else finding.age_years
    headline = f"Short stature: height {signed(height.sds)} SD at {number(age, 1)} y"
    if finding.ready:
        return f"{headline}, IGF-1 low, GH normal — mecasermin may be indicated"
    tests = ", ".join(TESTS[t].name for t in finding.workup)
    return f"{headline} — work up: {tests}"


def _height_line(finding: ScreeningFinding) -> str:
    height = finding.height
    shown_centile = height.centile if height.centile is not None else centile_from_sds(height.sds)
    age_then = f", age {number(height.age_years, 1)} y" if height.age_years is not None else ""
    return (f"**Height {number(height.value, 1)} cm on {fmt_date(height.date)}: SDS {signed(height.sds)}, "
            f"{centile(shown_centile)}** (CDC 2000, {md(finding.sex)}{age_then}).")


def detail(finding: ScreeningFinding) -> str:
    lines = [_height_line(finding), ""]
    if finding.ready:
        lines += ["On file, meeting the label's criteria for severe primary IGF-1 deficiency:", ""]
        lines += [f"- {name}: {md(evidence_value(e))}" + (f", {e.date.isoformat()}" if e.date else "")
                  for name, e in finding.on_file]
        lines.append("")
        if finding.dose is not None:
            dose = finding.dose
            lines.append(f"The suggestion drafts {number(dose.dose_mg)} mg twice daily = "
                         f"{number(round(dose.mg_per_kg, 3), 3)} mg/kg for {number(dose.weight.value)} kg "
                         f"({fmt_date(dose.weight.date)}), the lowest 0.1 mg step in the label's {_start(finding)} "
                         "starting range.")
        else:
            lines.append(f"The suggestion drafts a mecasermin order without a dose in mg: {md(finding.weight_note)}.")
        lines.append("The order is then checked for coverage, contraindications and dose.")
    else:
        tests = ", ".join(TESTS[t].name for t in finding.workup)
        lines += ["Short stature alone does not make a child a mecasermin candidate: the drug is for severe "
                  "primary IGF-1 deficiency (low IGF-1 with a normal stimulated GH, open growth plates).", "",
                  f"Still needed: {tests} (not on file, or not usable as recorded). "
                  + ("The suggestions order them; " if len(finding.workup) > 1 else "The suggestion orders it; ") +
                  "the screen offers a draft mecasermin order only once IGF-1 and GH qualify."]
    return "\n".join(lines)


def screening_card(finding: ScreeningFinding, action: dict | None, requester: str | None = None) -> dict:
    """The info card; `action`: the draft order's create (new order) or update (empty draft) action when
    the chart is ready for it; otherwise the suggestions order the work-up."""
    label = finding.label
    if action is not None:
        dose = finding.dose
        title = (f"Draft mecasermin {number(dose.dose_mg)} mg twice daily" if dose
                 else f"Draft mecasermin {number(label.start_range_mg_per_kg[0])} mg/kg twice daily")
        suggestions = [{"label": title, "uuid": str(uuid.uuid4()), "actions": [action]}]
        behaviour = "at-most-one"
    else:
        who = {"reference": requester} if requester and requester.split("/", 1)[0] in (
            "Practitioner", "PractitionerRole") else None
        suggestions = [{"label": TESTS[t].order_title, "uuid": str(uuid.uuid4()),
                        "actions": [create_test_action(t, finding.patient_reference, who, None)]}
                       for t in finding.workup]
        behaviour = "any"
    return {
        "uuid": str(uuid.uuid4()),
        "summary": plain_text(summary(finding)),
        "detail": detail(finding),
        "indicator": "info",
        "source": {"label": SOURCE_LABEL, "url": label.source_url,
                   "topic": {"system": CARD_TYPE_SYSTEM, "code": "clinical-reminder", "display": "Clinical Reminder"}},
        "suggestions": suggestions,
        "selectionBehavior": behaviour,
        "overrideReasons": [{"system": OVERRIDE_SYSTEM, "code": code, "display": display}
                            for code, display in OVERRIDE_REASONS],
        "links": [{"label": label.source_title, "url": label.source_url, "type": "absolute"}],
    }


def create_action(order: dict) -> dict:
    return {"type": "create", "description": "Add a draft mecasermin (Increlex) order at the starting dose",
            "resource": order}


def update_action(order: dict) -> dict:
    return {"type": "update", "description": "Fill in the open order as mecasermin (Increlex) at the starting dose",
            "resource": order}
