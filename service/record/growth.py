"""Height SDS and centile from the CDC 2000 stature-for-age LMS reference (docs/clinical-rules.md).

The table (data/cdc_statage.csv, CDC "statage.csv") covers 24.0 to 240.0 months. L, M and S
are interpolated linearly in age between its rows, and z = ((X/M)^L − 1) / (L·S). Outside
the table there is no SDS: under 2 years the WHO 2006 standard would apply, and the drug is
not for that age anyway.
"""
from __future__ import annotations

import bisect
import csv
import functools
import io
import math
from importlib import resources
from statistics import NormalDist

MIN_MONTHS = 24.0
MAX_MONTHS = 240.0
_SEX_CODE = {"male": "1", "female": "2"}
_NORMAL = NormalDist()


@functools.cache
def _table() -> dict[str, tuple[list[float], list[tuple[float, float, float]]]]:
    """{"1"|"2": ([age in months…], [(L, M, S)…])}, read once per process."""
    text = resources.files("service.record.data").joinpath("cdc_statage.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("".join(line for line in text.splitlines(True) if not line.startswith("#"))))
    table: dict[str, tuple[list[float], list[tuple[float, float, float]]]] = {"1": ([], []), "2": ([], [])}
    for row in rows:
        ages, lms = table[row["Sex"]]
        ages.append(float(row["Agemos"]))
        lms.append((float(row["L"]), float(row["M"]), float(row["S"])))
    return table


def lms_at(sex: str, age_months: float) -> tuple[float, float, float] | None:
    """L, M, S for "male"/"female" at an age in months (linear interpolation), None off-table."""
    code = _SEX_CODE.get(sex)
    if code is None or not MIN_MONTHS <= age_months <= MAX_MONTHS:
        return None
    ages, lms = _table()[code]
    i = bisect.bisect_left(ages, age_months)
    if ages[i] == age_months:
        return lms[i]
    (a0, (l0, m0, s0)), (a1, (l1, m1, s1)) = (ages[i - 1], lms[i - 1]), (ages[i], lms[i])
    f = (age_months - a0) / (a1 - a0)
    return l0 + f * (l1 - l0), m0 + f * (m1 - m0), s0 + f * (s1 - s0)


def height_sds(height_cm: float, sex: str | None,
               age_years: float | None) -> tuple[float | None, float | None, str | None]:
    """(SDS, centile 0–100, None) or (None, None, reason).

    The SDS is not rounded: decisions compare it exactly (−2.2549 is below −2.25), and the cards
    show it with as many decimals as it takes not to contradict the decision.
    """
    if sex not in _SEX_CODE:
        return None, None, "sex not recorded as female or male (the CDC reference is sex-specific)"
    if age_years is None:
        return None, None, "age at measurement unknown"
    if height_cm <= 0:
        return None, None, "height is not positive"
    months = age_years * 12
    lms = lms_at(sex, months)
    if lms is None:
        where = "under 2 years" if months < MIN_MONTHS else "over 20 years"
        return None, None, (f"age {age_years:.2f} y at measurement is {where}, "
                            "outside the CDC 2000 stature reference (2–20 y)")
    z = lms_z(height_cm, *lms)
    return z, centile(z), None


def lms_z(x: float, power: float, median: float, cv: float) -> float:
    """The LMS z-score: L is the Box-Cox power, M the median, S the coefficient of variation."""
    if power == 0:
        return math.log(x / median) / cv
    return ((x / median) ** power - 1) / (power * cv)


def centile(z: float) -> float:
    """0–100 to 3 significant digits, so that 0.00123 does not read as 0."""
    return float(f"{_NORMAL.cdf(z) * 100:.3g}")


def sds_from_centile(percentile: float) -> float | None:
    """The SDS of a reported percentile (0–100, exclusive), via the normal inverse CDF."""
    if not 0 < percentile < 100:
        return None
    return _NORMAL.inv_cdf(percentile / 100)


def height_sds_span(height_cm: float, sex: str | None, youngest: float,
                    oldest: float) -> tuple[float | None, float | None, tuple[float, float] | None, str | None]:
    """(SDS, centile, None, None) when every age from `youngest` to `oldest` gives the same SDS, else
    (None, None, (lowest, highest), None), or (None, None, None, reason) when some age in the span
    has no SDS. For a partial birth or measurement date: the ages are sampled at both ends and at
    least monthly between them (L, M and S change smoothly within a month)."""
    steps = max(1, math.ceil((oldest - youngest) * 12))
    results = [height_sds(height_cm, sex, youngest + (oldest - youngest) * k / steps) for k in range(steps + 1)]
    reasons = [reason for _, _, reason in results if reason]
    if reasons:
        return None, None, None, f"age at measurement between {youngest:.2f} and {oldest:.2f} y: {reasons[0]}"
    scores = [sds for sds, _, _ in results]
    if min(scores) == max(scores):
        return scores[0], results[0][1], None, None
    return None, None, (min(scores), max(scores)), None
