"""Numbers, units, scores and centiles as a clinician reads them, the same on every surface.

Prose uses one minus sign (U+2212 "−"), the comparison signs "≤"/"≥", "µg/L" for ug/L, and centiles
never as a decimal ordinal ("1.2nd"): "centile 1.2", and "< 0.1st centile" at the extreme. Decisions
compare exact values (service.policy.compare); these functions only display them.
"""
from __future__ import annotations

import math
from datetime import date
from fractions import Fraction
from typing import Any

MINUS = "\u2212"
COMPARATOR_SIGNS = {"<": "<", ">": ">", "<=": "\u2264", ">=": "\u2265"}
# UCUM codes as a reader expects to see them.
UNIT_WORDS = {"a": "y", "mo": "months", "ug/L": "\u00b5g/L", "ug/l": "\u00b5g/L", "[in_i]": "in", "[lb_av]": "lb",
              "1": ""}


def with_minus(text: str) -> str:
    """A leading ASCII hyphen of a number as the minus sign."""
    return MINUS + text[1:] if text.startswith("-") else text


def number(value: Any, digits: int = 2) -> str:
    """Rounded to `digits` decimals, trailing zeros dropped (2.50 → '2.5', 100.0 → '100', -3.0 → '−3');
    a text (a value already worded to agree with its limit) keeps its digits; None is '?'."""
    if value is None:
        return "?"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, Fraction)):
        if isinstance(value, Fraction):
            value = round(value, digits)
        text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else with_minus(text)
    return with_minus(str(value))


def signed(value: Any, digits: int = 2) -> str:
    """A score with its sign and `digits` decimals: '+1.20', '−3.90'. A text (a score already worded to
    agree with its limit, '−2.2549', 'just below −2.25') keeps its digits."""
    if isinstance(value, (int, float, Fraction)) and not isinstance(value, bool):
        return with_minus(f"{float(value):+.{digits}f}")
    text = number(value, digits)
    return text if text.startswith((MINUS, "+", "just")) else f"+{text}"


def score_limit(value: Any) -> str:
    """A score limit with one decimal at least: −3 → '−3.0', −2.25 → '−2.25'."""
    text = number(value, 2)
    return text if "." in text or not text.lstrip(MINUS + "+").isdigit() else f"{text}.0"


def limit(op: str, value: Any, unit: str | None = None, *, score: bool = False) -> str:
    """'≤ −3.0', '≥ 10 µg/L', '< 15 y'."""
    shown = score_limit(value) if score else number(value)
    unit_shown = unit_text(unit)
    return f"{COMPARATOR_SIGNS.get(op, op)} {shown}" + (f" {unit_shown}" if unit_shown else "")


def unit_text(unit: str | None) -> str:
    return UNIT_WORDS.get(unit, unit) if unit else ""


def quantity(value: Any, unit: str | None, comparator: str | None = None, digits: int = 2) -> str:
    """'< 15 ng/mL', '14.2 µg/L', '116.1 cm'."""
    sign = f"{COMPARATOR_SIGNS.get(comparator, comparator)} " if comparator else ""
    shown_unit = unit_text(unit)
    return f"{sign}{number(value, digits)}" + (f" {shown_unit}" if shown_unit else "")


def centile(value: float | None) -> str:
    """'< 0.1st centile', 'centile 0.4', 'centile 1.2', 'centile 36', '> 99.9th centile'."""
    if value is None:
        return "centile not known"
    if value < 0.1:
        return "< 0.1st centile"
    if value > 99.9:
        return "> 99.9th centile"
    return f"centile {value:.1f}" if value < 10 else f"centile {value:.0f}"


def day(value: date | None) -> str:
    return value.isoformat() if isinstance(value, date) else "no date"


def comparator(comparator: str | None) -> str:
    """A result's comparator as written before its value ('<' of '<15'), or nothing."""
    return comparator if comparator in ("<", "<=", ">", ">=") else ""


def age(years: float, *, birth_date: date | None = None, today: date | None = None) -> str:
    """'1 y 11 mo' under 3 years (whole months, never rounded up), else '6.4 years'."""
    if years >= 3:
        return f"{number(years, 1)} years"
    if birth_date is not None and today is not None:
        months = (today.year - birth_date.year) * 12 + (today.month - birth_date.month) - (today.day < birth_date.day)
    else:
        months = math.floor(round(years * 12, 6))
    months = max(months, 0)
    return f"{months // 12} y {months % 12} mo"
