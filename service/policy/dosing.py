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
from fractions import Fraction

from service.policy.compare import format_within
from service.policy.context import SCOPES, Context
from service.policy.decision import DoseFinding, Evidence, LabelFinding, ProposedDose, Reason
from service.record import units
from service.record.exact import Number, exact
from service.record.frozen import frozen

CRITICAL, WARNING, INFO = "critical", "warning", "info"
# mg/kg is shown with at least 3 decimals (0.058), more when fewer would contradict the verdict.
_DIGITS, _MAX_DIGITS = 3, 5


def doses_per_day(order) -> Number | None:
    """Administrations per day: the unrounded rate of a timing repeat (2.4 for every 10 hours), else
    the count read from a timing code, times of day or the text."""
    return order.per_day_rate if order.per_day_rate is not None else order.per_day


def round_down(mg: Fraction, step: Fraction) -> Fraction:
    """`mg` rounded down to a whole number of steps, exactly."""
    return math.floor(mg / step) * step


def propose(mg_per_kg: Fraction, weight_kg: float, cap: str, ctx: Context) -> ProposedDose | None:
    """The dose in mg at (at most) `mg_per_kg`, rounded down to a measurable step; None when no step fits."""
    rules = ctx.label.dosing
    weight = exact(weight_kg)
    dose = round_down(mg_per_kg * weight, rules.step_mg)
    if dose <= 0:
        return None
    per_kg = dose / weight
    return ProposedDose(float(dose), float(dose / exact(rules.concentration_mg_per_ml)), float(per_kg), cap,
                        rules.concentration_mg_per_ml, rules.doses_per_day,
                        format_within(per_kg, ((">", mg_per_kg),), _DIGITS, _MAX_DIGITS))


def _step(mg_per_kg: Fraction, weight_kg: float, ctx: Context) -> Fraction | None:
    """The titration step (0.08 mg/kg) the dose is within one measurable step of, if any."""
    rules = ctx.label.dosing
    step, weight = exact(rules.titration_step), exact(weight_kg)
    for k in range(1, math.floor(exact(rules.maximum) / step) + 1):
        if abs(mg_per_kg * weight - k * step * weight) < rules.step_mg:
            return k * step
    return None


def ordered_per_kg(order) -> bool:
    """Was the dose written in mg/kg (so that the ordered value is the per-dose mg/kg)?"""
    if order.mg_per_kg is None or order.dose_original_value is None:
        return False
    unit = units.unit_key(order.dose_original_unit)
    return (order.dose_mg is None or unit in units.DOSE_MG_PER_KG
            or "mg/kg" in (order.dose_note or "") or "mg/kg" in (order.dose_reason or ""))


@frozen
class DoseBasis:
    """What the check stands on: the exact mg/kg per dose (or why it is unknown) and the weight."""
    mg_per_kg: Fraction | None
    why_unknown: Reason | None
    per_kg_order: bool
    weight_ok: bool
    no_weight: Reason


def dose_basis(order, ctx: Context) -> DoseBasis:
    rules = ctx.label.dosing
    # A weight record that could not be read may be the latest: the weight on file cannot be trusted to be.
    unread = ctx.gaps_for(*SCOPES["dose"])
    stale = (order.weight_date is not None and (ctx.today - order.weight_date).days > rules.weight_max_age_days)
    weight_ok = bool(order.weight_kg) and order.weight_date is not None and not stale and not unread
    stale_why = (Reason("weight-unreadable", {"gaps": unread}) if unread else
                 Reason("weight-stale", {"date": order.weight_date, "days": rules.weight_max_age_days}) if stale else None)
    no_weight = stale_why or Reason("no-usable-weight")
    per_kg_order = ordered_per_kg(order)
    if per_kg_order:
        return DoseBasis(exact(order.mg_per_kg), None, True, weight_ok, no_weight)
    if order.dose_mg is None:
        return DoseBasis(None, Reason("dose-unit", {"record_reason": order.dose_reason}), False, weight_ok, no_weight)
    if stale_why:
        return DoseBasis(None, stale_why, False, False, no_weight)   # a weight that cannot be trusted is not used
    if not order.weight_kg:
        return DoseBasis(None, Reason("no-weight", {"record_reason": order.mg_per_kg_reason}), False, False, no_weight)
    return DoseBasis(exact(order.dose_mg) / exact(order.weight_kg), None, False, weight_ok, no_weight)


def _evidence(order) -> tuple[Evidence, ...]:
    notes = (Reason("mg-per-dose", {"mg": order.dose_mg}),) if not order.dose_note and order.dose_mg is not None else ()
    evidence = [Evidence(kind="order", value=order.dose_original_value, unit=order.dose_original_unit, date=None,
                         reference=order.reference, display=order.medication_text,
                         note=order.dose_note or (None if notes else order.dose_reason), notes=notes)]
    if order.weight_kg is not None:
        evidence.append(Evidence(kind="weight", value=order.weight_kg, unit="kg", date=order.weight_date,
                                 reference=order.weight_reference or ""))
    return tuple(evidence)


# The label finding each crossed limit raises: (id, severity); the dose's status names the most serious.
FINDINGS = {"above-maximum": ("dose-above-maximum", CRITICAL), "above-daily-maximum": ("dose-above-daily-maximum", CRITICAL),
            "above-start-range": ("dose-above-start-range", WARNING), "below-range": ("dose-below-range", INFO)}


def check_dose(ctx: Context) -> tuple[DoseFinding | None, tuple[LabelFinding, ...]]:
    """The dose against the label (module docstring): the DoseFinding and the label findings it raises,
    each with the facts the wording needs (service.wording.dose)."""
    order = ctx.record.order
    if order is None:
        return None, ()
    rules = ctx.label.dosing
    setting = "continuing" if ctx.reauthorization else "new-start"
    evidence = _evidence(order)
    basis = dose_basis(order, ctx)
    per_kg = basis.mg_per_kg
    facts = {"rules": rules, "setting": setting, "per_kg_order": basis.per_kg_order, "weight_ok": basis.weight_ok,
             "dose_mg": order.dose_mg, "weight_kg": order.weight_kg, "frequency_text": order.frequency_text,
             "rate": doses_per_day(order)}
    findings: list[LabelFinding] = []
    proposed, per_kg_text, per_day_text, crossed = None, None, None, []

    if per_kg is None:
        status = "unknown"
        facts.update(why_unknown=basis.why_unknown, dose_stated=order.dose_mg is not None)
        findings.append(LabelFinding("dose-unchecked", WARNING, "dose", Reason("dose-unchecked", facts), evidence))
    else:
        rate = doses_per_day(order)
        daily = per_kg * rate if rate else None
        per_kg_text = format_within(per_kg, ((">", rules.maximum), (">", rules.start_high), ("<", rules.start_low)),
                                    _DIGITS, _MAX_DIGITS)
        if daily is not None:
            per_day_text = format_within(daily, ((">", rules.daily_maximum),), _DIGITS, _MAX_DIGITS)
        facts.update(per_kg_text=per_kg_text, per_day_text=per_day_text)
        if per_kg > exact(rules.maximum):
            crossed.append("above-maximum")
        if rate is not None and rate > rules.doses_per_day and daily > rules.daily_maximum:
            crossed.append("above-daily-maximum")
        if setting == "new-start" and per_kg > exact(rules.start_high) and "above-maximum" not in crossed:
            crossed.append("above-start-range")   # the maximum's finding already says more
        if not crossed and per_kg < exact(rules.start_low):
            crossed.append("below-range")
        status = crossed[0] if crossed else "ok"
        if status in ("above-maximum", "above-daily-maximum", "above-start-range"):
            proposed, offer = _fix(per_kg, basis, setting, ctx)
            facts.update(offer=offer)
        if status == "ok" and setting == "continuing" and basis.weight_ok:
            facts.update(step=_step(per_kg, order.weight_kg, ctx))
        if proposed is not None:
            facts.update(proposed=proposed)
        for code in crossed:
            finding_id, severity = FINDINGS[code]
            findings.append(LabelFinding(finding_id, severity, "dose", Reason(finding_id, {**facts, "status": status}),
                                         evidence))

    findings += _frequency_findings(order, rules, evidence, "above-daily-maximum" in crossed)
    dose_mg = order.dose_mg if (basis.weight_ok or not basis.per_kg_order) else None
    dose = DoseFinding(status, Reason(status, facts), setting, dose_mg, order.dose_original_value,
                       order.dose_original_unit, order.per_day, order.frequency_text, order.route,
                       None if per_kg is None else float(per_kg), order.weight_kg, order.weight_reference,
                       order.weight_date, proposed, order.reference, per_kg_text, per_day_text)
    return dose, tuple(findings)


def _fix(per_kg: Fraction, basis: DoseBasis, setting: str, ctx: Context) -> tuple[ProposedDose | None, Reason | None]:
    """The corrected dose (twice daily, at the ordered mg/kg but no more than the starting range's top
    for a new start or the maximum when continuing, rounded down) and how the offer reads."""
    rules, order = ctx.label.dosing, ctx.record.order
    if not basis.weight_ok:
        return None, (Reason("no-weight-for-proposal", {"why": basis.no_weight}) if basis.per_kg_order else None)
    cap, name = ((exact(rules.start_high), "start-range-top") if setting == "new-start" else
                 (exact(rules.maximum), "maximum"))
    proposed = propose(min(per_kg, cap), order.weight_kg, "ordered" if per_kg <= cap else name, ctx)
    if proposed is None:
        return None, Reason("none-fits", {"cap": cap, "weight_kg": order.weight_kg})
    return proposed, Reason("proposed")


def _frequency_findings(order, rules, evidence, daily_flagged: bool) -> list[LabelFinding]:
    rate = doses_per_day(order)
    facts = {"rate": rate, "frequency_text": order.frequency_text, "doses_per_day": rules.doses_per_day}
    if rate is None:
        return [LabelFinding("dose-frequency-unknown", INFO, "dose", Reason("dose-frequency-unknown", facts), evidence)]
    if rate != rules.doses_per_day and not daily_flagged:
        return [LabelFinding("dose-frequency", WARNING, "dose", Reason("dose-frequency", facts), evidence)]
    return []
