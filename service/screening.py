"""Short-stature screening for the `patient-view` hook: is this a child who might need mecasermin?

Pure: a PatientRecord (built by service.record from Patient, heights, weights and every
medication source: requests, statements, dispenses, administrations), `today` and the label's
rules (label.yaml) in, a ScreeningFinding or None out. A child
is flagged when

- the child is at least 2 years old today (the drug is not established under 2),
- the latest usable height has a CDC 2000 height SDS (so it was measured at 2–20 years), and that
  SDS is at or below −2.25 (the payer's "more than 2.25 SD below the mean", centile 1.2), and
- that height was measured in the last 12 months (an older one says little about the child now),
- no mecasermin therapy is on file (active, on-hold, completed or stopped; a draft order does not
  count, so the card does not vanish while an order is being written), and
- no growth hormone (somatropin) is active: a child on GH is being treated for another cause, and
  mecasermin alongside GH is not a covered combination.

The screen says nothing about the indication itself (severe primary IGF-1 deficiency): the
order-select and order-sign services check that once an order exists.

The suggested starting dose is the lowest 0.1 mg step inside the label's starting range
(0.04–0.08 mg/kg per injection, label.yaml) for a weight of the last 90 days: 0.04 mg/kg rounded
UP to 0.1 mg. Rounding down would fall below 0.04 mg/kg, and the dose check of the order services
would then flag the service's own suggestion as below the labelled range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from service.fhir.prefetch import MEDICATION_KEYS, PATIENT, token_values
from service.fhir.prefetch import templates as order_templates
from service.policy.rules import LabelRules
from service.record.exact import exact
from service.record.model import Height, Measurement, PatientRecord

SCREEN_SDS = -2.25          # at or below: flagged
MAX_HEIGHT_AGE_DAYS = 365   # an older height does not describe the child now

HEIGHT_CODE = "8302-2"
WEIGHT_CODE = "29463-7"


def templates() -> dict[str, str]:
    """Prefetch of the screening services: the Patient, heights and weights, and every medication
    source (mecasermin or growth hormone already on file means no screen)."""
    codes = token_values((("loinc", HEIGHT_CODE), ("loinc", WEIGHT_CODE)))
    return {
        "patient": f"Patient/{PATIENT}",
        "growth": f"Observation?patient={PATIENT}&code={codes}&_sort=-date&_count=100",
        **{key: order_templates()[key] for key in MEDICATION_KEYS},
    }


@dataclass(frozen=True)
class StartingDose:
    dose_mg: float          # per injection, twice daily
    volume_ml: float        # of the 10 mg/mL solution
    mg_per_kg: float        # what dose_mg gives for the weight
    weight: Measurement     # the weight it was computed from


@dataclass(frozen=True)
class ScreeningFinding:
    patient_reference: str
    age_years: float
    sex: str
    height: Height                     # the latest usable height, with its SDS
    dose: StartingDose | None          # None: no weight from the last 90 days
    weight_note: str | None            # why there is no dose


def screen(record: PatientRecord, today: date, label: LabelRules) -> ScreeningFinding | None:
    patient = record.patient
    if (patient is None or patient.age_years is None or patient.age_years < label.minimum_age_years
            or patient.sex is None):
        return None
    if record.reauthorization:          # mecasermin already given or prescribed
        return None
    if any(m.category == "somatropin" and m.active for m in record.medications):
        return None
    height = _latest_height(record)
    if height is None or height.sds is None or height.sds > SCREEN_SDS:
        return None
    if (today - height.date).days > MAX_HEIGHT_AGE_DAYS:
        return None
    dose, note = starting_dose(record, today, label)
    return ScreeningFinding(patient.reference, patient.age_years, patient.sex, height, dose, note)


def _latest_height(record: PatientRecord) -> Height | None:
    """The newest usable, dated height (record.heights is newest first)."""
    for height in record.heights:
        if height.usable and height.date is not None and height.value:
            return height
    return None


def starting_dose(record: PatientRecord, today: date, label: LabelRules) -> tuple[StartingDose | None, str | None]:
    """The lowest 0.1 mg step at or above 0.04 mg/kg, from a weight of the last 90 days."""
    rules = label.dosing
    for weight in record.weights:
        if not (weight.usable and weight.date is not None and weight.value):
            continue
        age_days = (today - weight.date).days
        if age_days > rules.weight_max_age_days:
            return None, (f"the latest weight ({weight.value:g} kg on {weight.date.isoformat()}) is {age_days} days "
                          f"old; weigh the child to compute the dose")
        # Exact arithmetic (service.record.exact): the step at or above 0.04 mg/kg, kept only if it is
        # at most 0.08 mg/kg — compared unrounded.
        kg = exact(weight.value)
        dose_mg = math.ceil(kg * exact(rules.start_low) / rules.step_mg) * rules.step_mg
        mg_per_kg = dose_mg / kg
        if mg_per_kg > exact(rules.start_high):
            return None, (f"no {float(rules.step_mg):g} mg step lies within {rules.start_low:g}–{rules.start_high:g} "
                          f"mg/kg for {weight.value:g} kg")
        return StartingDose(float(dose_mg), float(dose_mg / exact(rules.concentration_mg_per_ml)), float(mg_per_kg),
                            weight), None
    return None, "no weight on file; weigh the child to compute the dose"
