"""The dose check (limits from label.yaml).

- New start: 0.04–0.08 mg/kg per dose; above that range → warning with the dose at the top of the
  starting range proposed; below it → information.
- Continuing (re-authorization): titrated in 0.04 mg/kg steps up to the maximum; a dose between steps
  is mentioned, not flagged.
- Any setting: above 0.12 mg/kg per dose → critical, with the maximum proposed.
- Frequency other than twice daily → warning; not stated → information. Three or more doses a day
  whose daily total is above 2 × 0.12 = 0.24 mg/kg/day → critical (hypoglycaemia).
- An order written in mg/kg is checked as written, whatever the weight: the ordered mg/kg is the
  per-dose mg/kg. Only a proposed dose in mg needs a weight (on file and at most 90 days old); without
  one the finding stands but no mg dose is proposed.
- mg/kg unknown (dose unit, weight missing or older than 90 days for an order in mg or mL) → a warning
  that says why.
Proposed doses are rounded DOWN to 0.1 mg and also given in mL at 10 mg/mL, with the mg/kg they give.
"""
from __future__ import annotations

import math

from service.policy.compare import format_number
from service.policy.context import Context
from service.policy.decision import DoseFinding, Evidence, LabelFinding, ProposedDose
from service.record import units

CRITICAL, WARNING, INFO = "critical", "warning", "info"


def _times(per_day: int) -> str:
    return {1: "once daily", 2: "twice daily"}.get(per_day, f"{per_day} times a day")


def round_down(value: float, step: float) -> float:
    return round(math.floor(value / step + 1e-9) * step, 6)


def propose(mg_per_kg: float, weight_kg: float, rule: str, ctx: Context) -> ProposedDose:
    rules = ctx.label.dosing
    dose = round_down(mg_per_kg * weight_kg, rules.round_down_mg)
    return ProposedDose(round(dose, 1), round(dose / rules.concentration_mg_per_ml, 3),
                        round(dose / weight_kg, 4), rule)


def _step_name(mg_per_kg: float, weight_kg: float, ctx: Context) -> str | None:
    rules = ctx.label.dosing
    steps = int(round(rules.maximum / rules.titration_step))
    for k in range(1, steps + 1):
        if abs(mg_per_kg * weight_kg - k * rules.titration_step * weight_kg) < rules.round_down_mg:
            return f"{format_number(k * rules.titration_step)} mg/kg step"
    return None


def ordered_per_kg(order) -> bool:
    """Was the dose written in mg/kg (so that the ordered value is the per-dose mg/kg)?"""
    if order.mg_per_kg is None or order.dose_original_value is None:
        return False
    unit = units.unit_key(order.dose_original_unit)
    return (order.dose_mg is None or unit in units.DOSE_MG_PER_KG
            or "mg/kg" in (order.dose_note or "") or "mg/kg" in (order.dose_reason or ""))


def check_dose(ctx: Context) -> tuple[DoseFinding | None, tuple[LabelFinding, ...]]:
    order = ctx.record.order
    if order is None:
        return None, ()
    rules = ctx.label.dosing
    setting = "continuing" if ctx.reauthorization else "new-start"
    allowed = (f"{format_number(rules.start_low)}–{format_number(rules.start_high)} mg/kg per dose to start"
               if setting == "new-start" else
               f"{format_number(rules.titration_step)} mg/kg steps up to {format_number(rules.maximum)} mg/kg per dose")
    allowed += f", {_times(rules.doses_per_day)}; never above {format_number(rules.maximum)} mg/kg per dose"
    evidence = [Evidence(kind="order", value=order.dose_original_value, unit=order.dose_original_unit, date=None,
                         reference=order.reference, display=order.medication_text,
                         note=order.dose_note or (f"{format_number(order.dose_mg)} mg per dose"
                                                  if order.dose_mg is not None else order.dose_reason))]
    if order.weight_kg is not None:
        evidence.append(Evidence(kind="weight", value=order.weight_kg, unit="kg", date=order.weight_date,
                                 reference=order.weight_reference or ""))
    findings: list[LabelFinding] = []

    mg_per_kg, why = order.mg_per_kg, order.mg_per_kg_reason
    weight_stale = (order.weight_date is not None
                    and (ctx.today - order.weight_date).days > rules.weight_max_age_days)
    weight_ok = bool(order.weight_kg) and order.weight_date is not None and not weight_stale
    per_kg_order = ordered_per_kg(order)
    no_weight_why = (f"the latest weight ({order.weight_date.isoformat()}) is older than {rules.weight_max_age_days} days"
                     if weight_stale else "no usable weight is on file")
    if per_kg_order:
        mg_per_kg, why = order.mg_per_kg, None
    elif order.dose_mg is None:
        mg_per_kg, why = None, order.dose_reason or "the dose is not stated in mg, mcg or mL"
    elif order.weight_date is not None and (ctx.today - order.weight_date).days > rules.weight_max_age_days:
        mg_per_kg = None
        why = (f"the latest weight ({order.weight_date.isoformat()}) is older than {rules.weight_max_age_days} days")
    elif mg_per_kg is None and order.weight_kg:
        mg_per_kg = order.dose_mg / order.weight_kg
    elif mg_per_kg is None:
        why = why or "no weight is on file"

    status, proposed = "ok", None
    if mg_per_kg is None:
        status = "unknown"
        advice = ("State the dose in mg, or in mL of the 10 mg/mL solution." if order.dose_mg is None
                  else "Record a current weight to check it against the label.")
        message = f"The dose per kg cannot be checked: {why}. {advice}"
        findings.append(LabelFinding("dose-unchecked", WARNING, "dose", message, tuple(evidence),
                                     title="Dose not checked"))
    else:
        per_kg = round(mg_per_kg, 3)
        if per_kg_order and not weight_ok:
            dose_text = f"{format_number(per_kg, 3)} mg/kg per dose (ordered in mg/kg)"
            no_mg = (f" No dose in mg is proposed: {no_weight_why}; record a current weight to compute one.")
        elif per_kg_order:
            dose_text = (f"{format_number(per_kg, 3)} mg/kg per dose (ordered in mg/kg; {format_number(order.dose_mg)} mg "
                         f"for {format_number(order.weight_kg, 1)} kg)")
            no_mg = ""
        else:
            dose_text = (f"{format_number(order.dose_mg)} mg per dose = {format_number(per_kg, 3)} mg/kg "
                         f"for {format_number(order.weight_kg, 1)} kg")
            no_mg = ""

        def offer(target: float, rule: str, label: str) -> str:
            nonlocal proposed
            if not weight_ok:
                return no_mg
            proposed = propose(target, order.weight_kg, rule, ctx)
            return f" {label}: {format_number(proposed.dose_mg)} mg ({format_number(proposed.volume_ml, 3)} mL)."

        if per_kg > rules.maximum:
            status = "above-maximum"
            message = (f"{dose_text} is above the label maximum of {format_number(rules.maximum)} mg/kg per dose "
                       f"(risk of hypoglycaemia)."
                       + offer(rules.maximum, f"label maximum {format_number(rules.maximum)} mg/kg per dose", "Proposed"))
            findings.append(LabelFinding("dose-above-maximum", CRITICAL, "dose", message, tuple(evidence),
                                         title="Dose above the maximum"))
        elif setting == "new-start" and per_kg > rules.start_high:
            status = "above-start-range"
            message = (f"{dose_text} is above the starting range ({format_number(rules.start_low)}–"
                       f"{format_number(rules.start_high)} mg/kg); raise by {format_number(rules.titration_step)} mg/kg "
                       f"only after a week without hypoglycaemia."
                       + offer(rules.start_high, f"top of the label starting range {format_number(rules.start_low)}–"
                                                 f"{format_number(rules.start_high)} mg/kg per dose", "Proposed start"))
            findings.append(LabelFinding("dose-above-start-range", WARNING, "dose", message, tuple(evidence),
                                         title="Starting dose above range"))
        elif per_kg < rules.start_low:
            status = "below-range"
            message = f"{dose_text} is below the usual {format_number(rules.start_low)} mg/kg per dose."
            findings.append(LabelFinding("dose-below-range", INFO, "dose", message, tuple(evidence),
                                         title="Dose below range"))
        elif setting == "continuing" and weight_ok:
            step = _step_name(mg_per_kg, order.weight_kg, ctx)
            message = f"{dose_text}: within the label limit" + (f" ({step})." if step else
                                                                 f", between the {format_number(rules.titration_step)} mg/kg titration steps.")
        elif setting == "continuing":
            message = f"{dose_text}: within the label limit."
        else:
            message = f"{dose_text}: within the starting range."

    daily_maximum = rules.maximum * rules.doses_per_day
    if order.per_day is None:
        findings.append(LabelFinding("dose-frequency-unknown", INFO, "dose",
                                     f"The dosing frequency is not stated; the label gives mecasermin {_times(rules.doses_per_day)}.",
                                     tuple(evidence), title="Frequency not stated"))
    elif (order.per_day > rules.doses_per_day and mg_per_kg is not None
          and round(mg_per_kg * order.per_day, 9) > round(daily_maximum, 9)):
        daily = mg_per_kg * order.per_day
        findings.append(LabelFinding(
            "dose-above-daily-maximum", CRITICAL, "dose",
            f"Ordered {order.frequency_text or _times(order.per_day)} ({_times(order.per_day)}) at "
            f"{format_number(mg_per_kg, 3)} mg/kg per dose = {format_number(daily, 3)} mg/kg per day, above the label "
            f"maximum of {format_number(daily_maximum, 3)} mg/kg per day ({format_number(rules.maximum)} mg/kg "
            f"{_times(rules.doses_per_day)}): risk of hypoglycaemia. Give mecasermin {_times(rules.doses_per_day)}, "
            f"within 20 minutes of a meal or snack.", tuple(evidence), title="Daily dose above the maximum"))
    elif order.per_day != rules.doses_per_day:
        findings.append(LabelFinding("dose-frequency", WARNING, "dose",
                                     f"Ordered {order.frequency_text or f'{order.per_day} times a day'}; the label gives mecasermin "
                                     f"{_times(rules.doses_per_day)}, within 20 minutes of a meal or snack.", tuple(evidence),
                                     title="Not twice daily"))
    dose_mg = order.dose_mg if (weight_ok or not per_kg_order) else None
    dose = DoseFinding(status, message, setting, dose_mg, order.dose_original_value, order.dose_original_unit,
                       order.per_day, order.frequency_text, order.route,
                       None if mg_per_kg is None else round(mg_per_kg, 4), order.weight_kg, order.weight_reference,
                       order.weight_date, allowed, proposed, order.reference)
    return dose, tuple(findings)
