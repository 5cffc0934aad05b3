"""The dose check (limits from label.yaml).

- New start: 0.04–0.08 mg/kg per dose; above that range → warning with the dose at the top of the
  starting range proposed; below it → information.
- Continuing (re-authorization): titrated in 0.04 mg/kg steps up to the maximum; a dose between steps
  is mentioned, not flagged.
- Any setting: above 0.12 mg/kg per dose → critical, with the maximum proposed.
- Frequency other than twice daily → warning; not stated → information.
- mg/kg unknown (dose unit, weight missing or older than 90 days) → a warning that says why.
Proposed doses are rounded DOWN to 0.1 mg and also given in mL at 10 mg/mL, with the mg/kg they give.
"""
from __future__ import annotations

import math

from service.policy.compare import format_number
from service.policy.context import Context
from service.policy.decision import DoseFinding, Evidence, LabelFinding, ProposedDose

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
    if order.dose_mg is None:
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
        findings.append(LabelFinding("dose-unchecked", WARNING, "dose", message, tuple(evidence)))
    else:
        per_kg = round(mg_per_kg, 3)
        dose_text = (f"{format_number(order.dose_mg)} mg per dose = {format_number(per_kg, 3)} mg/kg "
                     f"for {format_number(order.weight_kg, 1)} kg")
        if per_kg > rules.maximum:
            status = "above-maximum"
            proposed = propose(rules.maximum, order.weight_kg, f"label maximum {format_number(rules.maximum)} mg/kg per dose", ctx)
            message = (f"{dose_text} is above the label maximum of {format_number(rules.maximum)} mg/kg per dose "
                       f"(risk of hypoglycaemia). Proposed: {format_number(proposed.dose_mg)} mg "
                       f"({format_number(proposed.volume_ml, 3)} mL).")
            findings.append(LabelFinding("dose-above-maximum", CRITICAL, "dose", message, tuple(evidence)))
        elif setting == "new-start" and per_kg > rules.start_high:
            status = "above-start-range"
            proposed = propose(rules.start_high, order.weight_kg,
                               f"top of the label starting range {format_number(rules.start_low)}–{format_number(rules.start_high)} mg/kg per dose", ctx)
            message = (f"{dose_text} is above the starting range ({format_number(rules.start_low)}–"
                       f"{format_number(rules.start_high)} mg/kg); raise by {format_number(rules.titration_step)} mg/kg "
                       f"only after a week without hypoglycaemia. Proposed start: {format_number(proposed.dose_mg)} mg "
                       f"({format_number(proposed.volume_ml, 3)} mL).")
            findings.append(LabelFinding("dose-above-start-range", WARNING, "dose", message, tuple(evidence)))
        elif per_kg < rules.start_low:
            status = "below-range"
            message = f"{dose_text} is below the usual {format_number(rules.start_low)} mg/kg per dose."
            findings.append(LabelFinding("dose-below-range", INFO, "dose", message, tuple(evidence)))
        elif setting == "continuing":
            step = _step_name(mg_per_kg, order.weight_kg, ctx)
            message = f"{dose_text}: within the label limit" + (f" ({step})." if step else
                                                                 f", between the {format_number(rules.titration_step)} mg/kg titration steps.")
        else:
            message = f"{dose_text}: within the starting range."

    if order.per_day is None:
        findings.append(LabelFinding("dose-frequency-unknown", INFO, "dose",
                                     f"The dosing frequency is not stated; the label gives mecasermin {_times(rules.doses_per_day)}.",
                                     tuple(evidence)))
    elif order.per_day != rules.doses_per_day:
        findings.append(LabelFinding("dose-frequency", WARNING, "dose",
                                     f"Ordered {order.frequency_text or f'{order.per_day} times a day'}; the label gives mecasermin "
                                     f"{_times(rules.doses_per_day)}, within 20 minutes of a meal or snack.", tuple(evidence)))
    dose = DoseFinding(status, message, setting, order.dose_mg, order.dose_original_value, order.dose_original_unit,
                       order.per_day, order.frequency_text, order.route,
                       None if mg_per_kg is None else round(mg_per_kg, 4), order.weight_kg, order.weight_reference,
                       order.weight_date, allowed, proposed, order.reference)
    return dose, tuple(findings)
