"""Three-valued comparison of a (possibly censored) value with a threshold, and score conversions.

A result such as IGF-1 "<15 ng/mL" says only that the true value lies below 15. Compared with a
criterion, the answer is `met` when every value in that interval satisfies it, `not_met` when none
does, and `unknown` when the bound cannot decide. Scores are rounded to 2 decimals before comparing,
so the decision agrees with the value shown to the clinician.
"""
from __future__ import annotations

import math
from statistics import NormalDist

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
_INF = math.inf
_NORMAL = NormalDist()

OP_WORDS = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}


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


def _satisfied(x: float, op: str, threshold: float) -> bool:
    return {"<": x < threshold, "<=": x <= threshold, ">": x > threshold, ">=": x >= threshold}[op]


def compare(value: float, comparator: str | None, op: str, threshold: float, digits: int = 2) -> str:
    """met / not_met / unknown for 'true value `op` threshold' given `value` with `comparator`."""
    value = round(value, digits)
    threshold = round(threshold, digits)
    low, low_closed, high, high_closed = _interval(value, comparator)
    if low == high:
        return MET if _satisfied(value, op, threshold) else NOT_MET
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


def comparator_text(comparator: str | None) -> str:
    return comparator if comparator in ("<", "<=", ">", ">=") else ""


def centile_from_sds(sds: float) -> float:
    return _NORMAL.cdf(sds) * 100.0


def sds_from_centile(centile: float) -> float | None:
    if not 0.0 < centile < 100.0:
        return None
    return _NORMAL.inv_cdf(centile / 100.0)


def format_number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "?"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_centile(centile: float) -> str:
    """0.1234 → '0.12', 1.83 → '1.8', 23.4 → '23'."""
    if centile < 1:
        return f"{centile:.2f}"
    if centile < 10:
        return f"{centile:.1f}"
    return f"{centile:.0f}"
