"""Growth velocity in cm/year for re-authorization (docs/clinical-rules.md).

At re-authorization the velocity must show the response to mecasermin, so when the treatment
start is known only heights measured on treatment (on or after the start) are paired: a pair
that began before the start would mostly measure the growth that led to treatment.
"""
from __future__ import annotations

import bisect
import calendar
from datetime import date
from fractions import Fraction
from typing import Sequence

from .exact import exact
from .model import GrowthVelocity, Height

# "At least 6 months apart" in calendar months: 1 January → 1 July qualifies (181 days), and so does
# 31 August → 28 February (docs/clinical-rules.md, "Exact values and calendar months").
MIN_SPAN_MONTHS = 6
TARGET_SPAN_DAYS = 365.25    # a pair spanning about a year evens out seasonal variation in growth
DAYS_PER_YEAR = Fraction("365.25")

START_UNKNOWN_NOTE = ("the mecasermin start date is unknown, so the interval may include growth before "
                      "treatment")


def growth_velocity(heights: Sequence[Height], *, prior_therapy: bool = False,
                    treatment_start: date | None = None) -> GrowthVelocity:
    """From the most recent usable height and the earlier one whose distance in time is closest
    to 12 months among those at least 6 calendar months before it; (Δcm / Δdays) × 365.25.

    With prior mecasermin and a known `treatment_start`, both heights must be dated on or after
    it. With prior mecasermin and no known start, the velocity is computed as without therapy and
    `reason` carries a note that the start is unknown (a caveat: `cm_per_year` is still set).
    """
    usable = sorted((h for h in heights if h.usable and h.date is not None and h.value is not None),
                    key=lambda h: h.date, reverse=True)
    if treatment_start is not None:
        return _on_treatment(usable, treatment_start)
    velocity = _pair(usable)
    if prior_therapy:
        reason = f"{velocity.reason}; {START_UNKNOWN_NOTE}" if velocity.reason else START_UNKNOWN_NOTE
        return GrowthVelocity(velocity.cm_per_year, velocity.start, velocity.end, reason)
    return velocity


def _on_treatment(usable: list[Height], start_date: date) -> GrowthVelocity:
    on_treatment = [h for h in usable if h.date >= start_date]
    velocity = _pair(on_treatment)
    if velocity.cm_per_year is not None:
        return velocity
    count = len(on_treatment)
    detail = f"{count} usable height{'s' if count != 1 else ''} on or after that date"
    if count >= 2:
        detail += f", {(on_treatment[0].date - on_treatment[-1].date).days} days apart at most"
    return GrowthVelocity(None, velocity.start, velocity.end,
                          f"response not yet measurable: fewer than {MIN_SPAN_MONTHS} months of heights on mecasermin "
                          f"since {start_date.isoformat()} ({detail}; {MIN_SPAN_MONTHS} calendar months are needed)")


def pre_treatment_velocity(heights: Sequence[Height], treatment_start: date) -> GrowthVelocity:
    """The growth velocity before mecasermin: from the latest usable height dated before
    `treatment_start` and the earlier one closest to a year before it (at least 6 calendar months),
    as for the velocity on treatment. A baseline for a response judged against it."""
    before = sorted((h for h in heights if h.usable and h.date is not None and h.value is not None
                     and h.date < treatment_start), key=lambda h: h.date, reverse=True)
    velocity = _pair(before)
    if velocity.cm_per_year is not None:
        return velocity
    return GrowthVelocity(None, velocity.start, velocity.end,
                          f"before mecasermin was started ({treatment_start.isoformat()}): {velocity.reason}")


def months_later(day: date, months: int) -> date:
    """The same day of the month `months` calendar months later, or that month's last day when it
    is shorter (31 August + 6 months = 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def far_enough_apart(earlier: date, later: date) -> bool:
    """Are two measurements at least MIN_SPAN_MONTHS calendar months apart?"""
    return later >= months_later(earlier, MIN_SPAN_MONTHS)


def cm_per_year(start: Height, end: Height) -> Fraction:
    """(Δcm / Δdays) × 365.25, exactly, from the heights as written (120.1 − 110.1 is 10, not
    9.999999999999986); the decision against 2.5 cm/year compares this value."""
    return (exact(end.value) - exact(start.value)) / (end.date - start.date).days * DAYS_PER_YEAR


def _pair(usable: list[Height]) -> GrowthVelocity:
    """The velocity from newest-first usable heights, or the reason there is none."""
    if len(usable) < 2:
        return GrowthVelocity(None, usable[0] if usable else None, None,
                              f"{len(usable)} usable height{'s' if len(usable) != 1 else ''} on file; two are needed")
    end = usable[0]
    # Newest first, so the heights far enough before `end` are those from the first one that is (a
    # later date is never further apart): found by bisection, as a chart may hold hundreds.
    earlier = usable[1:]
    first_far = bisect.bisect_left(range(len(earlier)), True, key=lambda i: far_enough_apart(earlier[i].date, end.date))
    candidates = earlier[first_far:]
    if not candidates:
        longest = (end.date - usable[-1].date).days
        return GrowthVelocity(None, usable[-1], end,
                              f"the heights on file span only {longest} days ({usable[-1].date.isoformat()} to "
                              f"{end.date.isoformat()}); {MIN_SPAN_MONTHS} calendar months are needed")
    # Closest to a year; on a tie the longer span, which measures growth more precisely.
    start = min(candidates, key=lambda h: (abs((end.date - h.date).days - TARGET_SPAN_DAYS), -(end.date - h.date).days))
    # Unrounded, for display; the criterion compares the exact `cm_per_year(start, end)`.
    return GrowthVelocity(float(cm_per_year(start, end)), start, end, None)
