"""Unit normalisation: one table per quantity, UCUM codes and the free-text spellings EHRs send.

Each table maps a lower-cased unit (micro signs folded to "u") to the factor that converts it to
the normalised unit. A unit that is not in the table is never guessed: the value is unusable
and the reason names the unit.
"""
from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Any, Mapping

from .exact import exact

# Factors are exact (Fractions), so a converted value is the correctly rounded float of the exact
# product: 180 months is 15 years, 30 mIU/L is 10 µg/L, 36.6 lb is 16.601480742 kg (see exact.py).
_ONE, _HUNDRED, _TENTH, _THOUSANDTH = Fraction(1), Fraction(100), Fraction(1, 10), Fraction(1, 1000)
_INCH = Fraction("2.54")
_POUND = Fraction("0.45359237")
# IGF-1: 1 nmol/L = 7.649 ng/mL (molar mass of IGF-1 ≈ 7649 g/mol), as docs/clinical-rules.md states.
_IGF1_NMOL = Fraction("7.649")
# GH: the WHO 98/574 standard gives 1 µg ≈ 3 mIU, hence mIU/L ÷ 3 = µg/L (docs/clinical-rules.md).
_GH_MIU = Fraction(1, 3)
_MONTH = Fraction(1, 12)

LENGTH_CM = {"cm": _ONE, "m": _HUNDRED, "mm": _TENTH, "[in_i]": _INCH, "in": _INCH, "inch": _INCH, "inches": _INCH}
MASS_KG = {"kg": _ONE, "g": _THOUSANDTH, "[lb_av]": _POUND, "lb": _POUND, "lbs": _POUND}
IGF1_NG_ML = {"ng/ml": _ONE, "ug/l": _ONE, "mcg/l": _ONE, "nmol/l": _IGF1_NMOL}
GH_UG_L = {
    "ng/ml": _ONE, "ug/l": _ONE, "mcg/l": _ONE,
    "m[iu]/l": _GH_MIU, "miu/l": _GH_MIU, "mu/l": _GH_MIU, "u[iu]/ml": _GH_MIU, "uiu/ml": _GH_MIU,
}
AGE_YEARS = {
    "a": _ONE, "a_j": _ONE, "a_g": _ONE, "yr": _ONE, "yrs": _ONE, "y": _ONE, "year": _ONE, "years": _ONE,
    "mo": _MONTH, "mo_j": _MONTH, "mo_g": _MONTH, "month": _MONTH, "months": _MONTH,
}
DOSE_MG = {
    "mg": _ONE, "milligram": _ONE, "milligrams": _ONE,
    "ug": _THOUSANDTH, "mcg": _THOUSANDTH, "microgram": _THOUSANDTH, "micrograms": _THOUSANDTH,
}
DOSE_ML = frozenset({"ml", "milliliter", "milliliters", "millilitre", "millilitres"})
DOSE_MG_PER_KG = frozenset({"mg/kg", "mg/kg/dose", "mg/kg{dose}"})

_SPACES = re.compile(r"\s+")


_REMEMBERED_LENGTH = 40        # a chart repeats a few unit spellings in every Observation; longer ones are not kept


def unit_key(unit: Any) -> str | None:
    """A unit spelling reduced for table look-up: lower case, micro signs as "u", no spaces."""
    if not isinstance(unit, str):
        return None
    return _remembered_key(unit) if len(unit) <= _REMEMBERED_LENGTH else _key(unit)


def _key(unit: str) -> str | None:
    if not unit.strip():
        return None
    return _SPACES.sub("", unit.strip().lower().replace("\u00b5", "u").replace("\u03bc", "u"))


_remembered_key = functools.lru_cache(maxsize=1024)(_key)


def quantity_units(quantity: Mapping) -> list[str]:
    """The unit keys a Quantity offers, the coded (UCUM) one first, then the display text."""
    keys = []
    for field in ("code", "unit"):
        key = unit_key(quantity.get(field))
        if key and key not in keys:
            keys.append(key)
    return keys


def unit_of(quantity: Mapping) -> tuple[str | None, list[str]]:
    """(`shown_unit`, `quantity_units`) of a Quantity. A chart writes the same few units on every result,
    so a short unit (its code and text, never the value) is read once per process."""
    code, text = quantity.get("code"), quantity.get("unit")
    if _short(code) and _short(text):
        shown, keys = _remembered_unit(code, text)
        return shown, list(keys)
    return shown_unit(quantity), quantity_units(quantity)


def _short(unit: Any) -> bool:
    return unit is None or isinstance(unit, str) and len(unit) <= _REMEMBERED_LENGTH


@functools.lru_cache(maxsize=1024)
def _remembered_unit(code: str | None, text: str | None) -> tuple[str | None, tuple[str, ...]]:
    quantity = {"code": code, "unit": text}
    return shown_unit(quantity), tuple(quantity_units(quantity))


def shown_unit(quantity: Mapping) -> str | None:
    """The unit as recorded, for evidence: the display text, else the code."""
    for field in ("unit", "code"):
        value = quantity.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def convert(value: float, units: list[str], table: Mapping[str, Fraction],
            shown: str | None) -> tuple[float | None, str | None]:
    """(value in the table's unit, None) or (None, reason)."""
    for key in units:
        factor = table.get(key)
        if factor is not None:
            # By one, the exact product is the decimal the float stands for, which reads back as that very
            # float (0.0 for -0.0): no need to work it out.
            return (value + 0.0 if factor == 1 else float(exact(value) * factor)), None
    if not units:
        return None, "no unit"
    return None, f"unit {shown or units[0]!r} not recognised"


def number(value: Any) -> float | None:
    """A finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None
