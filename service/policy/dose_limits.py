"""A payer's dose and quantity limits (`type: dose_limit`), judged on the order's dose as the label's
dose check reads it (service/policy/dosing.py: the exact mg/kg per dose and administrations per day).

`quantity` names what is limited, `op`/`threshold` the limit, compared exactly (Fractions):

| quantity | the value |
|---|---|
| `mg_per_kg_per_dose` | the dose's mg/kg, unrounded |
| `mg_per_kg_per_day` | mg/kg per dose × administrations per day (every 10 hours is 2.4 a day) |
| `doses_per_day` | administrations per day |
| `ml_per_30_days` | mg per dose ÷ the label's concentration × administrations per day × 30 |
| `vials_per_30_days` | that volume in whole vials of the label's `vial_ml` (a vial is discarded 30 days after first use, so at least one) |

Whatever the order does not say (the dose, the weight an mg/kg needs, the frequency) leaves the
criterion unknown with the reason.
"""
from __future__ import annotations

import math
from fractions import Fraction

from service.policy.compare import format_against
from service.policy.context import Context
from service.policy.decision import UNKNOWN, Criterion, Evidence, Reason
from service.policy.dosing import dose_basis, doses_per_day
from service.policy.judging import Candidate, Selection, criterion, judge, value_facts
from service.record.exact import exact
from service.record.frozen import replace

DAYS = 30
# What each limit is about, as the wording names its unit.
QUANTITY_UNITS = {"mg_per_kg_per_dose": "mg/kg per dose", "mg_per_kg_per_day": "mg/kg per day",
                  "doses_per_day": "doses a day", "ml_per_30_days": "mL per 30 days",
                  "vials_per_30_days": "vials per 30 days"}


def _value(quantity: str, ctx: Context) -> tuple[Fraction | None, Reason | None]:
    """(the exact value the limit is about, None) or (None, why it cannot be known, as a code)."""
    order, rules = ctx.record.order, ctx.label.dosing
    rate = doses_per_day(order)
    no_rate = Reason("no-frequency")
    if quantity == "doses_per_day":
        return (exact(rate), None) if rate else (None, no_rate)
    if quantity in ("mg_per_kg_per_dose", "mg_per_kg_per_day"):
        basis = dose_basis(order, ctx)
        if basis.mg_per_kg is None:
            return None, Reason("mg-per-kg-unknown", {"why_unknown": basis.why_unknown})
        if quantity == "mg_per_kg_per_dose":
            return basis.mg_per_kg, None
        return (basis.mg_per_kg * exact(rate), None) if rate else (None, no_rate)
    if order.dose_mg is None:
        return None, Reason("no-dose-mg", {"record_reason": order.dose_reason or order.mg_per_kg_reason})
    if not rate:
        return None, no_rate
    ml = exact(order.dose_mg) / exact(rules.concentration_mg_per_ml) * exact(rate) * DAYS
    if quantity == "ml_per_30_days":
        return ml, None
    if rules.vial_ml is None:
        return None, Reason("no-vial-volume")
    return Fraction(max(1, math.ceil(ml / exact(rules.vial_ml)))), None


def dose_limit(spec, ctx: Context, basis: str) -> Criterion:
    quantity = spec["quantity"]
    spec = {**spec, "unit": QUANTITY_UNITS[quantity]}     # the rule reads "≤ 0.12 mg/kg per dose"
    order = ctx.record.order
    if order is None:
        return criterion(spec, "current", UNKNOWN, (), Reason("no-order"), reason="no-value")
    value, why = _value(quantity, ctx)
    evidence = Evidence(kind="order", value=order.dose_original_value, unit=order.dose_original_unit, date=None,
                        reference=order.reference, display=order.medication_text,
                        notes=(Reason("dose-limit-order", {"dose_note": order.dose_note,
                                                           "frequency_text": order.frequency_text}),))
    if value is None:
        return criterion(spec, "current", UNKNOWN, (evidence,),
                         Reason("dose-limit-unknown", {"unit": spec["unit"], "why": why}), reason="no-value")
    judged = Evidence(kind="dose_limit", value=float(value), unit=spec["unit"], date=None, reference=order.reference)
    selection = Selection(Candidate(ctx.today, value, None, judged), (evidence,), None)
    judged_criterion = judge(spec, "current", selection,
                             lambda c: value_facts(c, spec.get("op"), spec.get("threshold"), unit=spec["unit"]))
    # Shown as the explanation shows it: mg/kg needs three decimals (0.058), more near the limit.
    shown = replace(judged_criterion.evidence[0], value_text=format_against(value, spec["op"], spec["threshold"], 3))
    return replace(judged_criterion, evidence=(shown,) + judged_criterion.evidence[1:])
