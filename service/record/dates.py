"""FHIR dates → `datetime.date`, and ages in decimal years.

A clinical fact is dated by the day it was measured as the clinician recorded it. A dateTime
with a time zone ("2024-03-05T23:30:00-05:00") is therefore read as the local date written in
the string, not converted to UTC, which would move an evening measurement to the next day.
"""
from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any, Mapping

# YYYY, YYYY-MM or YYYY-MM-DD, optionally followed by a time and zone (FHIR date/dateTime/instant).
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")


def parse_date(value: Any, *, allow_partial: bool = False) -> tuple[date | None, str | None]:
    """(date, None) or (None, reason). Partial dates ("2019", "2019-04") become the first day
    of the period only when `allow_partial` (history such as a diagnosis onset), because a
    measurement dated to the month cannot give an age precise enough for a growth standard."""
    if not isinstance(value, str) or not value.strip():
        return None, "no date"
    return _parse(value, allow_partial)


@functools.lru_cache(maxsize=4096)
def _parse(value: str, allow_partial: bool) -> tuple[date | None, str | None]:
    # Cached: a chart repeats the same few hundred dates across its resources.
    match = _DATE.match(value.strip())
    if not match:
        return None, f"unreadable date {value!r}"
    year, month, day = match.groups()
    if day is None and not allow_partial:
        return None, f"date {value!r} is not a full date"
    try:
        return date(int(year), int(month or 1), int(day or 1)), None
    except ValueError:
        return None, f"invalid date {value!r}"


def effective_date(resource: Mapping) -> tuple[date | None, str | None]:
    """When an Observation was measured: effectiveDateTime / effectiveInstant, else the end of
    effectivePeriod (the result exists once the period is over), else its start, else `issued`."""
    candidates: list[Any] = [resource.get("effectiveDateTime"), resource.get("effectiveInstant")]
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        candidates += [period.get("end"), period.get("start")]
    candidates.append(resource.get("issued"))
    reason = "no effective date or issued date"
    for candidate in candidates:
        if candidate is None:
            continue
        parsed, why = parse_date(candidate)
        if parsed is not None:
            return parsed, None
        reason = why or reason
    return None, reason


@functools.lru_cache(maxsize=4096)
def age_years(birth: date | None, on: date | None) -> float | None:
    """Decimal age by calendar: whole years since birth plus the elapsed fraction of the current
    year of life. On a birthday the age is a whole number, so "at least 2 years" holds from the
    second birthday itself (a days/365.25 age would still be 1.9986 then)."""
    if birth is None or on is None or on < birth:
        return None
    years = on.year - birth.year
    if _anniversary(birth, on.year) > on:
        years -= 1
    last = _anniversary(birth, birth.year + years)
    following = _anniversary(birth, birth.year + years + 1)
    return years + (on - last).days / (following - last).days


def _anniversary(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:          # born on 29 February: the birthday falls on 28 February otherwise
        return date(year, 2, 28)
