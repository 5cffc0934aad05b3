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
from dataclasses import replace
from fractions import Fraction

from service.policy.compare import format_against
from service.policy.context import Context
from service.policy.criteria import QUANTITY_UNITS as UNITS, Candidate, Selection, _judge, _unknown
from service.policy.dosing import dose_basis, doses_per_day
from service.policy.decision import Criterion, Evidence
from service.record.exact import exact

DAYS = 30
DIGITS = 3


def _value(quantity: str, ctx: Context) -> tuple[Fraction | None, str | None]:
    """(the exact value the limit is about, None) or (None, why it cannot be known)."""
    order, rules = ctx.record.order, ctx.label.dosing
    rate = doses_per_day(order)
    if quantity == "doses_per_day":
        return (exact(rate), None) if rate else (None, "the order does not state how often")
    if quantity in ("mg_per_kg_per_dose", "mg_per_kg_per_day"):
        basis = dose_basis(order, ctx)
        if basis.mg_per_kg is None:
            return None, f"the dose per kg is not known: {basis.why_unknown}"
        if quantity == "mg_per_kg_per_dose":
            return basis.mg_per_kg, None
        return (basis.mg_per_kg * exact(rate), None) if rate else (None, "the order does not state how often")
    if order.dose_mg is None:
        return None, f"the dose in mg is not known: {order.dose_reason or order.mg_per_kg_reason or 'not stated'}"
    if not rate:
        return None, "the order does not state how often"
    ml = exact(order.dose_mg) / exact(rules.concentration_mg_per_ml) * exact(rate) * DAYS
    if quantity == "ml_per_30_days":
        return ml, None
    if rules.vial_ml is None:
        return None, "the label file gives no vial volume (dosing.vial_ml)"
    return Fraction(max(1, math.ceil(ml / exact(rules.vial_ml)))), None


def dose_limit(spec, ctx: Context, basis: str) -> Criterion:
    quantity, unit = spec["quantity"], UNITS[spec["quantity"]]
    order = ctx.record.order
    if order is None:
        return _unknown(spec, ctx, "current", (), "There is no order to check.", "The order's dose.", None)
    value, why = _value(quantity, ctx)
    evidence = Evidence(kind="order", value=order.dose_original_value, unit=order.dose_original_unit, date=None,
                        reference=order.reference, display=order.medication_text,
                        note="; ".join(n for n in (order.dose_note, order.frequency_text) if n) or None)
    if value is None:
        return _unknown(spec, ctx, "current", (evidence,), f"The plan's limit ({unit}) cannot be checked: {why}.",
                        "The order's dose in mg or mg/kg, how often it is given, and a current weight.", None)
    judged = Evidence(kind="dose_limit", value=float(value), unit=unit, date=None, reference=order.reference,
                      note=order.dose_note)
    selection = Selection(Candidate(ctx.today, value, None, judged), (evidence,), None)
    shown = format_against(value, spec.get("op"), spec.get("threshold"), DIGITS)
    criterion = _judge(spec, ctx, "current", selection, lambda c: f"{shown} {unit} (the order)")
    # Shown as the explanation shows it: mg/kg needs three decimals (0.058), more near the limit.
    return replace(criterion, evidence=(replace(criterion.evidence[0], value_text=shown),) + criterion.evidence[1:])

