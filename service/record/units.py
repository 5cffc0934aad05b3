"""Unit normalisation: one table per quantity, UCUM codes and the free-text spellings EHRs send.

Each table maps a lower-cased unit (micro signs folded to "u") to the factor that converts it to
the normalised unit. A unit that is not in the table is never guessed: the value is unusable
and the reason names the unit.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

_INCH = 2.54
_POUND = 0.45359237
# IGF-1: 1 nmol/L = 7.649 ng/mL (molar mass of IGF-1 ≈ 7649 g/mol), as the spec states.
_IGF1_NMOL = 7.649
# GH: the WHO 98/574 standard gives 1 µg ≈ 3 mIU, hence mIU/L ÷ 3 = µg/L (docs/clinical-rules.md).
_GH_MIU = 1 / 3

LENGTH_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": _INCH, "in": _INCH, "inch": _INCH, "inches": _INCH}
MASS_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": _POUND, "lb": _POUND, "lbs": _POUND}
IGF1_NG_ML = {"ng/ml": 1.0, "ug/l": 1.0, "mcg/l": 1.0, "nmol/l": _IGF1_NMOL}
GH_UG_L = {
    "ng/ml": 1.0, "ug/l": 1.0, "mcg/l": 1.0,
    "m[iu]/l": _GH_MIU, "miu/l": _GH_MIU, "mu/l": _GH_MIU, "u[iu]/ml": _GH_MIU, "uiu/ml": _GH_MIU,
}
AGE_YEARS = {
    "a": 1.0, "a_j": 1.0, "a_g": 1.0, "yr": 1.0, "yrs": 1.0, "y": 1.0, "year": 1.0, "years": 1.0,
    "mo": 1 / 12, "mo_j": 1 / 12, "mo_g": 1 / 12, "month": 1 / 12, "months": 1 / 12,
}
DOSE_MG = {
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0,
    "ug": 0.001, "mcg": 0.001, "microgram": 0.001, "micrograms": 0.001,
}
DOSE_ML = frozenset({"ml", "milliliter", "milliliters", "millilitre", "millilitres"})
DOSE_MG_PER_KG = frozenset({"mg/kg", "mg/kg/dose", "mg/kg{dose}"})

_SPACES = re.compile(r"\s+")


def unit_key(unit: Any) -> str | None:
    """A unit spelling reduced for table look-up: lower case, micro signs as "u", no spaces."""
    if not isinstance(unit, str) or not unit.strip():
        return None
    return _SPACES.sub("", unit.strip().lower().replace("\u00b5", "u").replace("\u03bc", "u"))


def quantity_units(quantity: Mapping) -> list[str]:
    """The unit keys a Quantity offers, the coded (UCUM) one first, then the display text."""
    keys = []
    for field in ("code", "unit"):
        key = unit_key(quantity.get(field))
        if key and key not in keys:
            keys.append(key)
    return keys


def shown_unit(quantity: Mapping) -> str | None:
    """The unit as recorded, for evidence: the display text, else the code."""
    for field in ("unit", "code"):
        value = quantity.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def convert(value: float, units: list[str], table: Mapping[str, float],
            shown: str | None) -> tuple[float | None, str | None]:
    """(value in the table's unit, None) or (None, reason)."""
    for key in units:
        factor = table.get(key)
        if factor is not None:
            return round(value * factor, 6), None
    if not units:
        return None, "no unit"
    return None, f"unit {shown or units[0]!r} not recognised"


def number(value: Any) -> float | None:
    """A finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None
