"""Short-stature screening for the `patient-view` hook: is this a child who might need mecasermin, and
what is the next step? (docs/clinical-rules.md, "Screening that earns its place")

Pure: a PatientRecord (built by service.record from Patient, heights, weights and every medication
source: requests, statements, dispenses, administrations), `today`, the policies (the label's rules
and the patient's policy), and whether the prescriber already removed a mecasermin order for this
child, in; a ScreeningFinding or None out. A child is a candidate when

- the child is at least 2 years old today (the drug is not established under 2),
- the latest usable height has a CDC 2000 height SDS (so it was measured at 2–20 years), and that
  SDS is at or below −2.25 (the payer's "more than 2.25 SD below the mean", centile 1.2), and
- that height was measured in the last 12 months (an older one says little about the child now),
- no mecasermin therapy is on file (active, on-hold, completed or stopped; a draft order does not
  count, so the card does not vanish while an order is being written), and
- no growth hormone (somatropin) is active: a child on GH is being treated for another cause.

It is never screened when the chart shows a critical contraindication (label.yaml), a documented
non-qualifying cause (an exclusion of the patient's policy or a limitation of the label: idiopathic
short stature, GH deficiency, …), a normal IGF-1 or a low stimulated GH (the label's criteria say no),
or when the prescriber removed a mecasermin order for the child before (`removed`).

Then the card offers the draft mecasermin order only when the label's IGF-1 criterion (SDS ≤ −3.0)
and GH criterion (normal stimulated peak) are both met on the chart; otherwise it offers the work-up
(IGF-1, GH stimulation, bone age — those not yet on file) as orders.

The suggested starting dose is the lowest 0.1 mg step inside the label's starting range
(0.04–0.08 mg/kg per injection, label.yaml) for a weight of the last 90 days: 0.04 mg/kg rounded
UP to 0.1 mg. Rounding down would fall below 0.04 mg/kg, and the dose check of the order services
would then flag the service's own suggestion as below the labelled range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date

from service.fhir.prefetch import KEY_TYPES, PRESCRIBER_TYPES, templates as order_templates
from service.policy.decision import LabelRef
from service.policy.evaluate import evaluate
from service.wording import word
from service.policy.rules import LabelRules, PolicySet
from service.record.exact import exact
from service.record.model import Height, Measurement, PatientRecord

SCREEN_SDS = -2.25          # at or below: flagged
MAX_HEIGHT_AGE_DAYS = 365   # an older height does not describe the child now

WORKUP = ("igf1", "gh-stimulation", "bone-age")     # service.policy.tests_to_order ids


def templates() -> dict[str, str]:
    """Prefetch of the screening services: what the order services read (Patient, growth, labs, bone
    age, conditions, allergies, every medication source, coverage), so that a child with a
    contraindication or a documented other cause is never screened. Not the prescriber: no order is
    being prescribed yet."""
    return {key: query for key, query in order_templates().items() if KEY_TYPES[key] not in PRESCRIBER_TYPES}


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
    label: LabelRef                    # the label facts the card words (label.yaml)
    ready: bool = False                # qualifying IGF-1 and normal GH on file: offer the draft order
    workup: tuple[str, ...] = ()       # otherwise the tests to order (tests_to_order ids)
    on_file: tuple = ()                # (name, Evidence) of the judged IGF-1 and GH, for the card


def screen(record: PatientRecord, today: date, policies: PolicySet, *, default_policy: str = "fda-label",
           removed: bool = False) -> ScreeningFinding | None:
    candidate = short_child(record, today, policies.label)
    if candidate is None or removed:
        return None
    label_view = word(evaluate(record, policies, today, policy_id=default_policy, default_policy=default_policy))
    own = evaluate(record, policies, today, default_policy=default_policy)
    if _contraindicated(label_view) or _other_cause(label_view) or _other_cause(own):
        return None
    igf1, gh = (_by_type(label_view, kind) for kind in ("igf1_sds", "gh_peak"))
    if "not_met" in (igf1.status if igf1 else None, gh.status if gh else None):
        return None                     # a normal IGF-1 or a low stimulated GH: not this drug
    ready = igf1 is not None and gh is not None and igf1.status == gh.status == "met"
    on_file = tuple((name, c.evidence[0]) for name, c in (("IGF-1", igf1), ("GH peak (stimulated)", gh))
                    if c is not None and c.status == "met" and c.evidence)
    workup = () if ready else tuple(t for t in WORKUP if not _settled(t, igf1, gh, record))
    return replace(candidate, ready=ready, workup=workup, on_file=on_file)


def _contraindicated(decision) -> bool:
    return any(f.severity == "critical" for f in decision.label_findings if f.category in ("contraindication",))


def _other_cause(decision) -> bool:
    """A documented non-qualifying cause: a policy exclusion or a label limitation (secondary IGF-1
    deficiency, idiopathic short stature, …), or a recorded diagnosis the policy does not accept."""
    if decision.exclusions:
        return True
    if any(f.id.startswith("label-limitation-") for f in decision.label_findings):
        return True
    diagnosis = _by_type(decision, "diagnosis")
    return diagnosis is not None and diagnosis.status == "not_met" and bool(diagnosis.evidence)


def _by_type(decision, kind: str):
    return next((c for c in decision.criteria if c.type == kind), None)


def _settled(test: str, igf1, gh, record: PatientRecord) -> bool:
    if test == "igf1":
        return igf1 is not None and igf1.status == "met"
    if test == "gh-stimulation":
        return gh is not None and gh.status == "met"
    return any(b.usable for b in record.bone_ages)


def short_child(record: PatientRecord, today: date, label: LabelRules) -> ScreeningFinding | None:
    """The height screen alone (see the module docstring), before the chart's other findings."""


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
    return ScreeningFinding(patient.reference, patient.age_years, patient.sex, height, dose, note, label.ref())


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
