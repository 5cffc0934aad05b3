"""Growth velocity in cm/year for re-authorization (spec §3 and §5)."""
from __future__ import annotations

from typing import Sequence

from .model import GrowthVelocity, Height

MIN_SPAN_DAYS = 182          # "at least 6 months apart"
TARGET_SPAN_DAYS = 365.25    # a pair spanning about a year evens out seasonal variation in growth


def growth_velocity(heights: Sequence[Height]) -> GrowthVelocity:
    """From the most recent usable height and the earlier one whose distance in time is closest
    to 12 months among those at least 182 days before it; (Δcm / Δdays) × 365.25."""
    usable = sorted((h for h in heights if h.usable and h.date is not None and h.value is not None),
                    key=lambda h: h.date, reverse=True)
    if len(usable) < 2:
        return GrowthVelocity(None, usable[0] if usable else None, None,
                              f"{len(usable)} usable height{'s' if len(usable) != 1 else ''} on file; two are needed")
    end = usable[0]
    candidates = [h for h in usable[1:] if (end.date - h.date).days >= MIN_SPAN_DAYS]
    if not candidates:
        longest = (end.date - usable[-1].date).days
        return GrowthVelocity(None, usable[-1], end,
                              f"the heights on file span only {longest} days; at least {MIN_SPAN_DAYS} are needed")
    # Closest to a year; on a tie the longer span, which measures growth more precisely.
    start = min(candidates, key=lambda h: (abs((end.date - h.date).days - TARGET_SPAN_DAYS), -(end.date - h.date).days))
    days = (end.date - start.date).days
    return GrowthVelocity(round((end.value - start.value) / days * 365.25, 2), start, end, None)
