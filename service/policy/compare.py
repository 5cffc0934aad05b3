"""Three-valued comparison of a (possibly censored) value with a threshold, and score conversions.

A result such as IGF-1 "<15 ng/mL" says only that the true value lies below 15. Compared with a
criterion, the answer is `met` when every value in that interval satisfies it, `not_met` when none
does, and `unknown` when the bound cannot decide. Values are compared exactly, never rounded (an age
of 1.997 years is under 2, an SDS of -2.2549 is below -2.25): each number is the decimal it was written
as (`service.record.exact`), or a Fraction when it is a quotient computed exactly (mg/kg, cm/year).
Rounding is for display only, and `format_against` shows a value with enough decimals that the shown
number never lands on the other side of the threshold (12.99 is not shown as "13").
"""
from __future__ import annotations

import math
import operator
from fractions import Fraction
from statistics import NormalDist

from service.record.exact import Number, exact, ordered

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
_INF = math.inf
_NORMAL = NormalDist()


def _interval(value: float, comparator: str | None) -> tuple[float, bool, float, bool]:
    """(low, low_closed, high, high_closed) of the true value."""
    if comparator in ("<",):
        return (-_INF, False, value, False)
    if comparator in ("<=",):
        return (-_INF, False, value, True)
    if comparator in (">",):
        return (value, False, _INF, False)
    if comparator in (">=",):
        return (value, True, _INF, False)
    return (value, True, value, True)


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def satisfied(x: Number, op: str, threshold: Number) -> bool:
    """`x op threshold`, exactly (see `service.record.exact`)."""
    x, threshold = ordered(x, threshold)
    return _OPERATORS[op](x, threshold)     # the one comparison asked for (a Fraction's costs a microsecond)



def compare(value: Number, comparator: str | None, op: str, threshold: Number) -> str:
    """met / not_met / unknown for 'true value `op` threshold' given `value` with `comparator`.
    The values are compared exactly, never rounded."""
    value, threshold = ordered(value, threshold)
    low, low_closed, high, high_closed = _interval(value, comparator)
    if low == high:
        return MET if satisfied(value, op, threshold) else NOT_MET
    if op == "<":
        if high < threshold or (high == threshold and not high_closed):
            return MET
        return NOT_MET if low >= threshold else UNKNOWN
    if op == "<=":
        if high <= threshold:
            return MET
        return NOT_MET if low > threshold or (low == threshold and not low_closed) else UNKNOWN
    if op == ">":
        if low > threshold or (low == threshold and not low_closed):
            return MET
        return NOT_MET if high <= threshold else UNKNOWN
    if low >= threshold:  # ">="
        return MET
    return NOT_MET if high < threshold or (high == threshold and not high_closed) else UNKNOWN


def centile_from_sds(sds: float) -> float:
    return _NORMAL.cdf(sds) * 100.0


def sds_from_centile(centile: float) -> float | None:
    if not 0.0 < centile < 100.0:
        return None
    return _NORMAL.inv_cdf(centile / 100.0)


def format_number(value: Number | None, digits: int = 2) -> str:
    """Rounded half-even to `digits` decimals, trailing zeros dropped: 2.50 → '2.5', 100.0 → '100'."""
    if value is None:
        return "?"
    if isinstance(value, Fraction):
        value = round(value, digits)     # exact rounding of the exact value, then printed
    text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# Up to 15 significant digits a decimal reads back as the float whose shortest repr it is (DBL_DIG), so
# that float compares with a float or a Fraction exactly as the decimal does (service.record.exact);
# with an integer, so long as the integer has as few digits.
_FLOAT_DIGITS = 15
_SMALL_INTEGER = 10 ** _FLOAT_DIGITS


def _shown_number(text: str, limits) -> Number:
    """The figure `text` shows, to compare with `limits` as exactly as its Fraction: as a float where that
    is the same (a Fraction costs microseconds to read and to compare, for each figure a card shows)."""
    significant = text.lstrip("-0.").replace(".", "", 1)      # "inf" and "nan" are no decimals: a Fraction
    plain = len(significant) <= _FLOAT_DIGITS and (not significant or significant.isdigit())
    if plain and all(type(threshold) is not int or -_SMALL_INTEGER < threshold < _SMALL_INTEGER
                     for _, threshold in limits):
        return float(text)
    return Fraction(text)


def format_against(value: Number | None, op: str | None, threshold: Number | None, digits: int = 1,
                   max_digits: int = 4) -> str:
    """`value` with `digits` decimals (fewer when exact: 13.0 → '13'), but with more decimals when the
    rounded figure would fall on the other side of `op threshold` than the value itself
    (12.99 against < 13 → '12.99', not '13'). A value still indistinguishable from the threshold at
    `max_digits` decimals is said in words: 'just above 0.12', 'just below -2.25'."""
    if op is None or threshold is None:
        return format_number(value, digits)
    return format_within(value, ((op, threshold),), digits, max_digits)


def format_within(value: Number | None, limits, digits: int = 1, max_digits: int = 4) -> str:
    """Like `format_against`, for several limits at once ((op, threshold), …): the fewest decimals
    from `digits` up with which the shown figure stands on the same side of every limit as the value
    (0.083 against 0.04–0.08 → '0.083', never '0.08')."""
    if value is None:
        return "?"
    truths = [(op, threshold, satisfied(value, op, threshold)) for op, threshold in limits]
    for n in range(digits, max_digits + 1):
        text = format_number(value, n)
        shown = _shown_number(text, limits)
        if all(satisfied(shown, op, threshold) == truth for op, threshold, truth in truths):
            return text
    closest = min((threshold for _, threshold, _ in truths), key=lambda t: abs(exact(value) - exact(t)))
    side = "above" if exact(value) > exact(closest) else "below"
    return f"just {side} {format_number(closest, max_digits)}"
