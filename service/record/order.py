"""The draft mecasermin order: dose in mg, administrations per day, route, mg/kg, dispense."""
from __future__ import annotations

import re
from datetime import date
from fractions import Fraction
from typing import Any, Mapping, Sequence

from . import units
from .codes import as_list, codings, concept_text, concept_words
from .dates import parse_date
from .exact import exact
from .model import Diagnosis, Measurement, OrderFacts
from .resources import ResourceIndex, reference_of
from .medications import medication_words



def label_concentration() -> float:
    """Increlex is one strength only (label.yaml's `dosing.concentration_mg_per_ml`), so a dose in mL
    converts exactly. Read from the shipped label when the caller does not pass the label it uses."""
    from service.policy.loader import load_label   # the policy layer reads the record: import at call time
    return load_label().dosing.concentration_mg_per_ml
# A weight older than this cannot check a weight-based dose (docs/clinical-rules.md).
WEIGHT_MAX_AGE_DAYS = 90

ROUTE_CODES: dict[tuple[str, str], str] = {
    ("snomed", "34206005"): "subcutaneous",
    ("snomed", "47625008"): "intravenous",
    ("ncit", "C38299"): "subcutaneous",   # FDA SPL route terminology
    ("ncit", "C38276"): "intravenous",
    ("v3-route", "SQ"): "subcutaneous",
}
_ROUTE_TEXT = (
    ("subcutaneous", re.compile(r"(?<![a-z])(subcut\w*|sub-?q|s\.c\.?|sc|sq|under the skin)(?![a-z])", re.IGNORECASE)),
    ("intravenous", re.compile(r"(?<![a-z])(intravenous\w*|i\.v\.?|iv)(?![a-z])", re.IGNORECASE)),
)

# HL7 v3 GTS abbreviations (FHIR Timing.code) → administrations per day.
TIMING_CODES: dict[str, int] = {
    "QD": 1, "AM": 1, "PM": 1, "BED": 1, "BID": 2, "TID": 3, "QID": 4,
    "Q12H": 2, "Q8H": 3, "Q6H": 4, "Q4H": 6, "Q3H": 8, "Q2H": 12, "Q1H": 24,
}
# Free-text frequencies, most specific first ("twice daily" before "daily").
_FREQUENCY_PHRASES = (
    (2, [r"b\.?i\.?d\.?", r"twice\s+(a\s+|per\s+|each\s+)?day", r"twice\s+daily", r"two\s+times\s+(a\s+|per\s+)?day",
         r"every\s+12\s+hours", r"q\s?12\s?h"]),
    (3, [r"t\.?i\.?d\.?", r"three\s+times\s+(a\s+|per\s+)?day", r"every\s+8\s+hours", r"q\s?8\s?h"]),
    (4, [r"q\.?i\.?d\.?", r"four\s+times\s+(a\s+|per\s+)?day", r"every\s+6\s+hours", r"q\s?6\s?h"]),
    (1, [r"q\.?d\.?", r"once\s+(a\s+|per\s+)?day", r"once\s+daily", r"daily", r"every\s+day", r"every\s+24\s+hours",
         r"nightly", r"at\s+bedtime"]),
)
_FREQUENCY_TEXT = tuple((n, re.compile(r"(?<![a-z])(" + "|".join(p) + r")(?![a-z])", re.IGNORECASE))
                        for n, p in _FREQUENCY_PHRASES)
_PERIOD_DAYS = {"s": Fraction(1, 86400), "min": Fraction(1, 1440), "h": Fraction(1, 24), "d": Fraction(1),
                "wk": Fraction(7), "mo": Fraction("30.4375"), "a": Fraction("365.25")}


def read_order(order: Mapping, index: ResourceIndex, weights: Sequence[Measurement], today: date,
               reasons: Sequence[Diagnosis], mg_per_ml: float) -> OrderFacts:
    reference = reference_of(order)
    weight, weight_reason = _weight(weights, today)
    lines = dosage_lines(order)
    doses = [_dose(dosage, None if weight_reason else weight, weight_reason, mg_per_ml) for dosage in lines]
    chosen, lines_note, lines_reason = _highest_line(doses, weight_reason)
    dosage = lines[chosen] if lines else {}
    dose = doses[chosen] if lines else _dose({}, None, weight_reason, mg_per_ml)
    if lines_reason:
        dose = {**dose, "mg": None, "mg_per_kg": None, "reason": lines_reason}
    if lines_note:
        dose = {**dose, "note": _join(lines_note, dose["note"]) if dose["note"] else lines_note}
    per_day, frequency_text, per_day_rate = _frequency(dosage)
    route, route_text = _order_route(lines, chosen)
    mg_per_kg, mg_per_kg_reason = dose["mg_per_kg"], None
    if mg_per_kg is None:
        if dose["mg"] is None:
            mg_per_kg_reason = f"dose unknown: {dose['reason']}"
        elif weight_reason:
            mg_per_kg_reason = weight_reason
        else:
            mg_per_kg = float(exact(dose["mg"]) / exact(weight.value))   # display; dosing compares it exactly
    dispense = order.get("dispenseRequest")
    quantity = dispense.get("quantity") if isinstance(dispense, dict) else None
    dispense_value = units.number(quantity.get("value")) if isinstance(quantity, dict) else None
    authored_on, unreadable = parse_date(order.get("authoredOn"))
    written = order.get("authoredOn")
    return OrderFacts(
        authored_on=authored_on,
        authored_on_text=str(written)[:40] if unreadable and written not in (None, "") else None,
        reference=reference,
        resource_id=order.get("id") if isinstance(order.get("id"), str) else None,
        medication_text=medication_words(order, index)[0],
        dose_mg=dose["mg"], dose_original_value=dose["value"], dose_original_unit=dose["unit"],
        dose_reason=dose["reason"], dose_note=dose["note"],
        per_day=per_day, frequency_text=frequency_text, route=route, route_text=route_text,
        weight_kg=weight.value if weight else None, weight_reference=weight.reference if weight else None,
        weight_date=weight.date if weight else None,
        mg_per_kg=mg_per_kg, mg_per_kg_reason=mg_per_kg_reason,
        dispense_value=dispense_value,
        dispense_unit=units.shown_unit(quantity) if isinstance(quantity, dict) else None,
        reasons=tuple(reasons), per_day_rate=per_day_rate,
    )


def dosage_lines(order: Mapping) -> list[Mapping]:
    """Every dosageInstruction of the order that is a JSON object, in order."""
    return [d for d in as_list(order.get("dosageInstruction")) if isinstance(d, dict)]


def _highest_line(doses: list[dict[str, Any]], weight_reason: str | None) -> tuple[int, str | None, str | None]:
    """(index of the line whose facts describe the order, note, reason the dose is unknown).

    An order with several dosage lines (a titration, a morning and an evening dose) is checked at
    its highest dose per administration: the dose the label maximum must hold for. Lines are
    compared in mg/kg when every dosed line is ordered in mg/kg, else in mg. A line whose dose is
    stated but cannot be read leaves the highest dose unknown; lines without any dose are passed over.
    """
    count = len(doses)
    if count <= 1:
        return 0, None, None
    numbers = ", ".join(f"line {i + 1}: {_shown(d)}" for i, d in enumerate(doses))
    dosed = [i for i, d in enumerate(doses) if d["quantity"]]
    if not dosed:
        return 0, f"the order has {count} dosage lines and none states a dose; line 1 is used", None
    unreadable = [i for i in dosed if doses[i]["mg"] is None and doses[i]["mg_per_kg"] is None]
    if unreadable:
        i = unreadable[0]
        return i, f"the order has {count} dosage lines ({numbers})", (
            f"dosage line {i + 1} of {count}: {doses[i]['reason']}, so the highest dose on the order cannot be known")
    if all(doses[i]["mg_per_kg"] is not None for i in dosed):
        key, basis = "mg_per_kg", "mg/kg"
    elif all(doses[i]["mg"] is not None for i in dosed):
        key, basis = "mg", "mg"
    else:
        i = next(i for i in dosed if doses[i]["mg"] is None)
        return i, f"the order has {count} dosage lines ({numbers})", (
            f"its dosage lines are ordered in mg and in mg/kg and cannot be compared: {weight_reason}")
    chosen = max(dosed, key=lambda i: (doses[i][key], -i))
    return chosen, (f"the order has {count} dosage lines ({numbers}); line {chosen + 1}, the highest dose per "
                    f"administration (compared in {basis}), is used"), None


def _shown(dose: Mapping[str, Any]) -> str:
    if dose["value"] is None:
        return "no dose"
    return f"{dose['value']:g} {dose['unit']}" if dose["unit"] else f"{dose['value']:g}"


def _order_route(lines: list[Mapping], chosen: int) -> tuple[str | None, str | None]:
    """The route of the chosen line, else the first line that states one. Intravenous on any line
    wins: the drug is for subcutaneous use only, and that must not hide behind another line."""
    routes = [_route(dosage) for dosage in lines]
    if not routes:
        return None, None
    for i, (route, text) in enumerate(routes):
        if route == "intravenous" and i != chosen and routes[chosen][0] != "intravenous":
            return route, f"{text} (dosage line {i + 1} of {len(lines)})"
    if routes[chosen][0] is not None:
        return routes[chosen]
    return next((r for r in routes if r[0] is not None), (None, None))


def _weight(weights: Sequence[Measurement], today: date) -> tuple[Measurement | None, str | None]:
    """The most recent usable weight (with its staleness as a reason), newest-first input."""
    for weight in weights:
        if weight.usable and weight.date is not None and weight.value:
            age = (today - weight.date).days
            if age > WEIGHT_MAX_AGE_DAYS:
                return weight, (f"latest weight ({weight.value:g} kg on {weight.date.isoformat()}) is {age} days old; "
                                f"a weight from the last {WEIGHT_MAX_AGE_DAYS} days is needed")
            return weight, None
    return None, "no usable weight on file"


def _dose(dosage: Mapping, weight: Measurement | None, weight_reason: str | None, mg_per_ml: float) -> dict[str, Any]:
    out: dict[str, Any] = {"mg": None, "value": None, "unit": None, "reason": None, "note": None, "mg_per_kg": None,
                           "quantity": False}
    quantity, note = None, None
    for dose_and_rate in as_list(dosage.get("doseAndRate")):
        if not isinstance(dose_and_rate, dict):
            continue
        if isinstance(dose_and_rate.get("doseQuantity"), dict):
            quantity = dose_and_rate["doseQuantity"]
            break
        dose_range = dose_and_rate.get("doseRange")
        if isinstance(dose_range, dict) and isinstance(dose_range.get("high"), dict):
            # A range is checked at its top: the highest dose the order allows must be safe.
            quantity, note = dose_range["high"], "dose range on the order: its upper bound is used"
            break
    if quantity is None:
        out["reason"] = "no dose quantity on the order"
        return out
    out["quantity"] = True
    value = units.number(quantity.get("value"))
    out["value"], out["unit"] = value, units.shown_unit(quantity)
    if value is None or value <= 0:
        out["reason"] = "dose has no positive numeric value"
        return out
    keys = units.quantity_units(quantity)
    if set(keys) & units.DOSE_MG_PER_KG:
        out["mg_per_kg"] = value
        if weight is None or weight.date is None:
            out["reason"] = f"ordered as {value:g} mg/kg, and mg cannot be computed: {weight_reason}"
        else:
            out["mg"] = float(exact(value) * exact(weight.value))
            note = _join(note, f"ordered as {value:g} mg/kg; {out['mg']:g} mg computed from the weight "
                               f"{weight.value:g} kg of {weight.date.isoformat()}")
    elif any(k in units.DOSE_MG for k in keys):
        mg, _ = units.convert(value, keys, units.DOSE_MG, out["unit"])
        out["mg"] = mg
        if mg != value:
            note = _join(note, f"{value:g} {out['unit']} = {mg:g} mg")
    elif set(keys) & units.DOSE_ML:
        out["mg"] = float(exact(value) * exact(mg_per_ml))
        note = _join(note, f"{value:g} mL × {mg_per_ml:g} mg/mL = {out['mg']:g} mg")
    else:
        shown = out["unit"] or "none"
        out["reason"] = f"dose unit {shown!r} cannot be converted to mg"
    out["note"] = note
    return out


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def _frequency(dosage: Mapping) -> tuple[int | None, str | None, Fraction | None]:
    """(administrations per day as a whole number, the words, the unrounded rate from a repeat).
    A repeat such as every 10 hours (2.4 a day) has no whole number but keeps its rate, so the
    daily dose can still be checked."""
    timing = dosage.get("timing") if isinstance(dosage.get("timing"), dict) else {}
    repeat = timing.get("repeat") if isinstance(timing.get("repeat"), dict) else {}
    frequency, period = units.number(repeat.get("frequency")), units.number(repeat.get("period"))
    # A range ("1 to 3 times a day": frequencyMax; "every 8 to 24 h": periodMax) is checked at its most
    # frequent, the one that could overdose: frequencyMax over the shortest period.
    most = units.number(repeat.get("frequencyMax"))
    unit = repeat.get("periodUnit")
    if frequency and period and frequency > 0 and period > 0 and isinstance(unit, str) and unit in _PERIOD_DAYS:
        upto = most if most is not None and most > frequency else None
        rate = exact(upto or frequency) / (exact(period) * _PERIOD_DAYS[unit])
        text = f"{frequency:g}{f'–{upto:g}' if upto else ''} per {period:g} {unit}"
        whole = round(rate)
        return (whole if whole >= 1 and abs(rate - whole) < Fraction(1, 100) else None), text, rate
    for key in ("timeOfDay", "when"):
        moments = as_list(repeat.get(key))
        if moments and not period:
            return len(moments), f"at {', '.join(str(m) for m in moments)}", None
    code = timing.get("code")
    for _, value, display in codings(code):
        if value.upper() in TIMING_CODES:
            return TIMING_CODES[value.upper()], display or value.upper(), None
    for text in (concept_words(code), dosage.get("text"), dosage.get("patientInstruction")):
        if isinstance(text, str) and text:
            for per_day, pattern in _FREQUENCY_TEXT:
                match = pattern.search(text)
                if match:
                    return per_day, match.group(0), None
    return None, concept_text(code) or None, None


def _route(dosage: Mapping) -> tuple[str | None, str | None]:
    concept = dosage.get("route")
    shown = concept_text(concept) or None
    for system, code, display in codings(concept):
        route = ROUTE_CODES.get((system, code))  # type: ignore[arg-type]
        if route is None and system == "v3-route" and code.upper().startswith("IV"):
            route = "intravenous"
        if route:
            return route, shown or display or code
    for text in (concept_words(concept), dosage.get("text")):
        if isinstance(text, str) and text:
            for route, pattern in _ROUTE_TEXT:
                match = pattern.search(text)
                if match:
                    return route, shown or match.group(0)
    if isinstance(concept, dict) and (shown or any(True for _ in codings(concept))):
        return "other", shown
    return None, None
