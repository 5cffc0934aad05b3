"""The dose check (limits from label.yaml; the rules in docs/clinical-rules.md, "Exact values").

- mg/kg is the exact quotient of the dose and the weight as the chart wrote them (a Fraction:
  2.0 mg / 16.6 kg is 0.12048…, above 0.12); it is never rounded before a limit.
- Per dose: above 0.12 mg/kg → critical. New start above the 0.04–0.08 mg/kg starting range →
  warning; below 0.04 → information. Continuing (prior mecasermin): titrated in 0.04 mg/kg steps up to
  the maximum; a dose between steps is mentioned, not flagged.
- Per day: an order given more often than twice daily (TID, q8h, a timing code, 3 × per day, or a
  repeat at its exact rate: every 10 hours is 2.4 a day) is also checked per day; above 2 × 0.12 =
  0.24 mg/kg/day → critical (hypoglycaemia). Any other frequency than twice daily → warning; not
  stated → information.
- The status names the most serious limit crossed (per-dose maximum, daily maximum, starting range),
  and the card headline names that limit.
- The fix: twice daily, at the ordered dose per kg but no more than the top of the starting range
  (0.08 mg/kg) for a new start, or the maximum (0.12 mg/kg) when continuing, rounded DOWN to a
  measurable step (0.01 mL at the label concentration) so that it never exceeds the limit it fixes.
- An order written in mg/kg is checked as written, whatever the weight. Only a proposed dose in mg
  needs a weight (on file and at most 90 days old); without one the finding stands but no mg dose is
  proposed. mg/kg unknown (dose unit, weight missing or too old for an order in mg or mL) → a warning
  that says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from service.policy.compare import format_number, format_within
from service.policy.context import Context
from service.policy.decision import DoseFinding, Evidence, LabelFinding, ProposedDose
from service.record import units
from service.record.exact import Number, exact

CRITICAL, WARNING, INFO = "critical", "warning", "info"
# mg/kg is shown with at least 3 decimals (0.058), more when fewer would contradict the verdict.
_DIGITS, _MAX_DIGITS = 3, 5


def times_a_day(per_day: Number) -> str:
    """'once daily', 'twice daily', '3 times a day', '2.4 times a day'."""
    return {1: "once daily", 2: "twice daily"}.get(per_day, f"{format_number(per_day)} times a day")


def doses_per_day(order) -> Number | None:
    """Administrations per day: the unrounded rate of a timing repeat (2.4 for every 10 hours), else
    the count read from a timing code, times of day or the text."""
    return order.per_day_rate if order.per_day_rate is not None else order.per_day


def _range(rules) -> str:
    return f"{format_number(rules.start_low)}–{format_number(rules.start_high)} mg/kg"


def round_down(mg: Fraction, step: Fraction) -> Fraction:
    """`mg` rounded down to a whole number of steps, exactly."""
    return math.floor(mg / step) * step


def propose(mg_per_kg: Fraction, weight_kg: float, rule: str, ctx: Context) -> ProposedDose | None:
    """The dose in mg at (at most) `mg_per_kg`, rounded down to a measurable step; None when no step fits."""
    rules = ctx.label.dosing
    weight = exact(weight_kg)
    dose = round_down(mg_per_kg * weight, rules.step_mg)
    if dose <= 0:
        return None
    per_kg = dose / weight
    return ProposedDose(float(dose), float(dose / exact(rules.concentration_mg_per_ml)), float(per_kg), rule,
                        rules.concentration_mg_per_ml, rules.doses_per_day,
                        format_within(per_kg, ((">", mg_per_kg),), _DIGITS, _MAX_DIGITS))


def _step_name(mg_per_kg: Fraction, weight_kg: float, ctx: Context) -> str | None:
    """'0.08 mg/kg step' when the dose is within one measurable step of a titration step."""
    rules = ctx.label.dosing
    step, weight = exact(rules.titration_step), exact(weight_kg)
    for k in range(1, math.floor(exact(rules.maximum) / step) + 1):
        if abs(mg_per_kg * weight - k * step * weight) < rules.step_mg:
            return f"{format_number(k * step)} mg/kg step"
    return None


def ordered_per_kg(order) -> bool:
    """Was the dose written in mg/kg (so that the ordered value is the per-dose mg/kg)?"""
    if order.mg_per_kg is None or order.dose_original_value is None:
        return False
    unit = units.unit_key(order.dose_original_unit)
    return (order.dose_mg is None or unit in units.DOSE_MG_PER_KG
            or "mg/kg" in (order.dose_note or "") or "mg/kg" in (order.dose_reason or ""))


@dataclass(frozen=True)
class DoseBasis:
    """What the check stands on: the exact mg/kg per dose (or why it is unknown) and the weight."""
    mg_per_kg: Fraction | None
    why_unknown: str | None
    per_kg_order: bool
    weight_ok: bool
    no_weight_why: str


def dose_basis(order, ctx: Context) -> DoseBasis:
    rules = ctx.label.dosing
    stale = (order.weight_date is not None and (ctx.today - order.weight_date).days > rules.weight_max_age_days)
    weight_ok = bool(order.weight_kg) and order.weight_date is not None and not stale
    stale_why = f"the latest weight ({order.weight_date.isoformat()}) is older than {rules.weight_max_age_days} days" \
        if stale else None
    no_weight_why = stale_why or "no usable weight is on file"
    per_kg_order = ordered_per_kg(order)
    if per_kg_order:
        return DoseBasis(exact(order.mg_per_kg), None, True, weight_ok, no_weight_why)
    if order.dose_mg is None:
        return DoseBasis(None, order.dose_reason or "the dose is not stated in mg, mcg or mL", False, weight_ok,
                      no_weight_why)
    if stale_why:
        return DoseBasis(None, stale_why, False, False, no_weight_why)
    if not order.weight_kg:
        return DoseBasis(None, order.mg_per_kg_reason or "no weight is on file", False, False, no_weight_why)
    return DoseBasis(exact(order.dose_mg) / exact(order.weight_kg), None, False, weight_ok, no_weight_why)


def _evidence(order) -> tuple[Evidence, ...]:
    evidence = [Evidence(kind="order", value=order.dose_original_value, unit=order.dose_original_unit, date=None,
                         reference=order.reference, display=order.medication_text,
                         note=order.dose_note or (f"{format_number(order.dose_mg)} mg per dose"
                                                  if order.dose_mg is not None else order.dose_reason))]
    if order.weight_kg is not None:
        evidence.append(Evidence(kind="weight", value=order.weight_kg, unit="kg", date=order.weight_date,
                                 reference=order.weight_reference or ""))
    return tuple(evidence)


def check_dose(ctx: Context) -> tuple[DoseFinding | None, tuple[LabelFinding, ...]]:
    order = ctx.record.order
    if order is None:
        return None, ()
    rules = ctx.label.dosing
    setting = "continuing" if ctx.reauthorization else "new-start"
    allowed = (f"{_range(rules)} per dose to start" if setting == "new-start" else
               f"{format_number(rules.titration_step)} mg/kg steps up to {format_number(rules.maximum)} mg/kg per dose")
    allowed += (f", {times_a_day(rules.doses_per_day)}; never above {format_number(rules.maximum)} mg/kg per dose "
                f"or {format_number(rules.daily_maximum)} mg/kg per day")
    evidence = _evidence(order)
    basis = dose_basis(order, ctx)
    per_kg = basis.mg_per_kg
    findings: list[LabelFinding] = []
    proposed, limit, per_kg_text, per_day_text = None, None, None, None

    if per_kg is None:
        status = "unknown"
        advice = ("State the dose in mg, or in mL of the "
                  f"{format_number(rules.concentration_mg_per_ml)} mg/mL solution." if order.dose_mg is None
                  else "Record a current weight to check it against the label.")
        message = f"The dose per kg cannot be checked: {basis.why_unknown}. {advice}"
        findings.append(LabelFinding("dose-unchecked", WARNING, "dose", message, evidence, title="Dose not checked"))
    else:
        rate = doses_per_day(order)
        daily = per_kg * rate if rate else None
        per_kg_text = format_within(per_kg, ((">", rules.maximum), (">", rules.start_high), ("<", rules.start_low)),
                                    _DIGITS, _MAX_DIGITS)
        if daily is not None:
            per_day_text = format_within(daily, ((">", rules.daily_maximum),), _DIGITS, _MAX_DIGITS)
        above_maximum = per_kg > exact(rules.maximum)
        above_daily = rate is not None and rate > rules.doses_per_day and daily > rules.daily_maximum
        above_start = setting == "new-start" and per_kg > exact(rules.start_high)
        dose_text = _dose_text(order, basis, per_kg_text)

        def offer() -> str:
            nonlocal proposed
            proposed, words = _fix(per_kg, per_kg_text, basis, setting, ctx)
            return words

        if above_maximum:
            status, limit = "above-maximum", f"{format_number(rules.maximum)} mg/kg per dose maximum"
            message = (f"{dose_text} is above the label maximum of {format_number(rules.maximum)} mg/kg per dose "
                       f"(risk of hypoglycaemia)." + offer())
            findings.append(LabelFinding("dose-above-maximum", CRITICAL, "dose", message, evidence,
                                         title="Dose above the maximum"))
        elif above_daily:
            status, limit = "above-daily-maximum", f"{format_number(rules.daily_maximum)} mg/kg per day maximum"
            message = _daily_message(order, per_kg_text, per_day_text, rules) + offer()
        elif above_start:
            status, limit = "above-start-range", f"{_range(rules)} starting range"
            message = _start_range_message(dose_text, rules) + offer()
        elif per_kg < exact(rules.start_low):
            status, limit = "below-range", f"usual {format_number(rules.start_low)} mg/kg per dose"
            message = f"{dose_text} is below the usual {format_number(rules.start_low)} mg/kg per dose."
            findings.append(LabelFinding("dose-below-range", INFO, "dose", message, evidence, title="Dose below range"))
        elif setting == "continuing" and basis.weight_ok:
            status = "ok"
            step = _step_name(per_kg, order.weight_kg, ctx)
            message = f"{dose_text}: within the label limit" + (
                f" ({step})." if step else f", between the {format_number(rules.titration_step)} mg/kg titration steps.")
        else:
            status = "ok"
            message = f"{dose_text}: within the {'label limit' if setting == 'continuing' else 'starting range'}."
        if above_daily:
            findings.append(LabelFinding("dose-above-daily-maximum", CRITICAL, "dose",
                                         message if status == "above-daily-maximum" else
                                         _daily_message(order, per_kg_text, per_day_text, rules),
                                         evidence, title="Daily dose above the maximum"))
        if above_start and not above_maximum:   # the maximum's finding already says more
            findings.append(LabelFinding("dose-above-start-range", WARNING, "dose",
                                         message if status == "above-start-range" else
                                         _start_range_message(dose_text, rules),
                                         evidence, title="Starting dose above range"))

    findings += _frequency_findings(order, rules, evidence, any(f.id == "dose-above-daily-maximum" for f in findings))
    dose_mg = order.dose_mg if (basis.weight_ok or not basis.per_kg_order) else None
    dose = DoseFinding(status, message, setting, dose_mg, order.dose_original_value, order.dose_original_unit,
                       order.per_day, order.frequency_text, order.route,
                       None if per_kg is None else float(per_kg), order.weight_kg, order.weight_reference,
                       order.weight_date, allowed, proposed, order.reference, limit, per_kg_text, per_day_text)
    return dose, tuple(findings)


def _fix(per_kg: Fraction, per_kg_text: str, basis: DoseBasis, setting: str,
         ctx: Context) -> tuple[ProposedDose | None, str]:
    """The corrected dose (twice daily, at the ordered mg/kg but no more than the starting range's top
    for a new start or the maximum when continuing, rounded down) and the sentence that offers it."""
    rules, order = ctx.label.dosing, ctx.record.order
    if not basis.weight_ok:
        return None, (f" No dose in mg is proposed: {basis.no_weight_why}; record a current weight to compute one."
                      if basis.per_kg_order else "")
    cap, rule = ((exact(rules.start_high), f"top of the label starting range {_range(rules)} per dose")
                 if setting == "new-start" else
                 (exact(rules.maximum), f"label maximum {format_number(rules.maximum)} mg/kg per dose"))
    if per_kg <= cap:
        rule = f"the ordered {per_kg_text} mg/kg per dose"
    rule += (f", {times_a_day(rules.doses_per_day)}, rounded down to "
             f"{format_number(rules.measurable_step_ml)} mL ({format_number(rules.step_mg)} mg)")
    proposed = propose(min(per_kg, cap), order.weight_kg, rule, ctx)
    if proposed is None:
        return None, f" No measurable dose fits within {format_number(cap)} mg/kg for {format_number(order.weight_kg)} kg."
    label = "Proposed start" if setting == "new-start" else "Proposed"
    return proposed, (f" {label}: {format_number(proposed.dose_mg)} mg ({format_number(proposed.volume_ml, 3)} mL) "
                      f"{times_a_day(rules.doses_per_day)} = {proposed.mg_per_kg_text} mg/kg per dose.")


def _dose_text(order, basis: DoseBasis, per_kg_text: str) -> str:
    if basis.per_kg_order and not basis.weight_ok:
        return f"{per_kg_text} mg/kg per dose (ordered in mg/kg)"
    if basis.per_kg_order:
        return (f"{per_kg_text} mg/kg per dose (ordered in mg/kg; {format_number(order.dose_mg)} mg "
                f"for {format_number(order.weight_kg, 1)} kg)")
    return f"{format_number(order.dose_mg)} mg per dose = {per_kg_text} mg/kg for {format_number(order.weight_kg, 1)} kg"


def _start_range_message(dose_text: str, rules) -> str:
    return (f"{dose_text} is above the starting range ({_range(rules)}); raise by "
            f"{format_number(rules.titration_step)} mg/kg only after a week without hypoglycaemia.")


def _daily_message(order, per_kg_text: str, per_day_text: str, rules) -> str:
    often = times_a_day(doses_per_day(order))
    return (f"Ordered {order.frequency_text or often} ({often}) at {per_kg_text} mg/kg "
            f"per dose = {per_day_text} mg/kg per day, above the label maximum of {format_number(rules.daily_maximum)} "
            f"mg/kg per day ({format_number(rules.maximum)} mg/kg {times_a_day(rules.doses_per_day)}): risk of "
            f"hypoglycaemia. Give mecasermin {times_a_day(rules.doses_per_day)}, within 20 minutes of a meal or snack.")


def _frequency_findings(order, rules, evidence, daily_flagged: bool) -> list[LabelFinding]:
    rate = doses_per_day(order)
    if rate is None:
        return [LabelFinding("dose-frequency-unknown", INFO, "dose",
                             f"The dosing frequency is not stated; the label gives mecasermin {times_a_day(rules.doses_per_day)}.",
                             evidence, title="Frequency not stated")]
    if rate != rules.doses_per_day and not daily_flagged:
        return [LabelFinding("dose-frequency", WARNING, "dose",
                             f"Ordered {order.frequency_text or times_a_day(rate)}; the label gives mecasermin "
                             f"{times_a_day(rules.doses_per_day)}, within 20 minutes of a meal or snack.", evidence,
                             title="Not twice daily")]
    return []
