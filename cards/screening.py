"""The short-stature screening card and the draft mecasermin order its suggestion creates.

One info card: what was found (the latest height and its SDS, with date and age), what it does and
does not mean (short stature alone is not the indication), the work-up the coverage criteria ask
for, and a one-click draft order at the label's starting dose. Accepting it puts a draft
MedicationRequest in the order; the order-select and order-sign services then check it.
"""
from __future__ import annotations

import copy
import uuid
from datetime import date

from cards.response import without_empty
from cards.suggestions import SUBCUTANEOUS, UCUM
from cards.text import LABEL_TITLE, LABEL_URL, fmt_date, fmt_number
from service.policy.compare import centile_from_sds
from service.wording.numbers import centile as format_centile
from service.screening import SCREEN_SDS, ScreeningFinding
from service.trigger import NDC_SYSTEM

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
ORDER_NOTE = ("Drafted from the short-stature screening card. Mecasermin is for severe primary IGF-1 deficiency "
              "(height and IGF-1 at or below -3 SD, GH normal or high) or GH gene deletion with neutralizing "
              "antibodies; confirm the diagnosis before signing.")


def dose_text(finding: ScreeningFinding) -> str:
    dose = finding.dose
    if dose is None:
        return ("0.04 mg/kg subcutaneously twice daily, within 20 minutes of a meal or snack "
                f"({finding.weight_note})")
    return (f"{fmt_number(dose.dose_mg)} mg ({fmt_number(dose.volume_ml)} mL of 10 mg/mL) subcutaneously twice daily, "
            f"within 20 minutes of a meal or snack (starting dose {fmt_number(round(dose.mg_per_kg, 3))} mg/kg for "
            f"{fmt_number(dose.weight.value)} kg on {fmt_date(dose.weight.date)})")


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


def summary(finding: ScreeningFinding) -> str:
    height = finding.height
    age = height.age_years if height.age_years is not None else finding.age_years
    return (f"Short stature: height {height.sds:+.2f} SD at {age:.1f} y — "
            "consider work-up for primary IGF-1 deficiency (mecasermin)")


def detail(finding: ScreeningFinding) -> str:
    height = finding.height
    centile = height.centile if height.centile is not None else centile_from_sds(height.sds)
    recorded = ""
    if height.original_unit and height.original_unit != height.unit and height.original_value is not None:
        recorded = f" (recorded as {fmt_number(height.original_value)} {height.original_unit})"
    age_then = f" at {height.age_years:.1f} y" if height.age_years is not None else ""
    lines = [
        f"**Latest height {fmt_number(height.value)} cm{recorded} on {fmt_date(height.date)}{age_then}: "
        f"SDS {height.sds:+.2f}, centile {format_centile(centile)}** (CDC 2000 stature-for-age, {finding.sex}). "
        f"That is at or below {SCREEN_SDS:+.2f} SD (1.2nd centile), near the height limit of the primary plan's "
        "mecasermin policy (below −2.25 SD); other plans set their own.",
        "",
        "Short stature alone does not make a child a candidate. Mecasermin (Increlex) is for severe primary "
        "IGF-1 deficiency — height SDS and baseline IGF-1 SDS at or below -3.0 with normal or high growth "
        "hormone — or GH gene deletion with neutralizing antibodies, in children from 2 years of age with "
        "open epiphyses. Coverage usually asks for:",
        "",
        "- a diagnosis of primary IGF-1 deficiency (ICD-10-CM E34.321, e.g. Laron syndrome);",
        "- a baseline serum IGF-1 with the laboratory's reference range;",
        "- a growth hormone stimulation test with a normal or high peak;",
        "- a bone age X-ray showing open growth plates.",
        "",
    ]
    if finding.dose is not None:
        dose = finding.dose
        lines.append(f"The suggestion drafts a mecasermin order at the label's starting dose: {fmt_number(dose.dose_mg)} mg "
                     f"({fmt_number(dose.volume_ml)} mL of 10 mg/mL) twice daily = "
                     f"{fmt_number(round(dose.mg_per_kg, 3))} mg/kg for {fmt_number(dose.weight.value)} kg on "
                     f"{fmt_date(dose.weight.date)} (the lowest 0.1 mg step in the 0.04–0.08 mg/kg starting range).")
    else:
        lines.append(f"The suggestion drafts a mecasermin order at 0.04 mg/kg twice daily without a dose in mg: "
                     f"{finding.weight_note}.")
    lines += ["When the order is selected and signed, this service checks it against the coverage criteria, the "
              "label's contraindications and the dose.", "",
              f"Screen: age 2 years or more, latest height SDS at or below {SCREEN_SDS:+.2f}, no mecasermin on file. "
              f"Source: [{LABEL_TITLE}]({LABEL_URL})."]
    return "\n".join(lines)


def screening_card(finding: ScreeningFinding, action: dict) -> dict:
    """The info card; `action` is the suggestion's create (new order) or update (empty draft) action."""
    dose = finding.dose
    label = (f"Draft mecasermin {fmt_number(dose.dose_mg)} mg twice daily" if dose
             else "Draft mecasermin 0.04 mg/kg twice daily")
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary(finding),
        "detail": detail(finding),
        "indicator": "info",
        "source": {"label": SOURCE_LABEL, "url": LABEL_URL,
                   "topic": {"system": CARD_TYPE_SYSTEM, "code": "clinical-reminder", "display": "Clinical Reminder"}},
        "suggestions": [{"label": label, "uuid": str(uuid.uuid4()), "actions": [action]}],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [{"system": OVERRIDE_SYSTEM, "code": code, "display": display}
                            for code, display in OVERRIDE_REASONS],
        "links": [{"label": LABEL_TITLE, "url": LABEL_URL, "type": "absolute"}],
    }


def create_action(order: dict) -> dict:
    return {"type": "create", "description": "Add a draft mecasermin (Increlex) order at the starting dose",
            "resource": order}


def update_action(order: dict) -> dict:
    return {"type": "update", "description": "Fill in the open order as mecasermin (Increlex) at the starting dose",
            "resource": order}
