"""FHIR dates → `datetime.date`, and ages in decimal years.

A partial date ("2017", "2017-06") stands for a span of days (docs/clinical-rules.md, "Reading
chart text, dates and ranges"): `date_span` gives its first and last day, and whoever decides
with it checks both ends, deciding only when every day of the span gives the same outcome.

A clinical fact is dated by the day it was measured as the clinician recorded it. A dateTime
with a time zone ("2024-03-05T23:30:00-05:00") is therefore read as the local date written in
the string, not converted to UTC, which would move an evening measurement to the next day.
"""
from __future__ import annotations

import calendar
import functools
import re
from datetime import date
from typing import Any, Mapping

# YYYY, YYYY-MM or YYYY-MM-DD, optionally followed by a time and zone (FHIR date/dateTime/instant).
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")


def parse_date(value: Any, *, allow_partial: bool = False) -> tuple[date | None, str | None]:
    """(date, None) or (None, reason). Partial dates ("2019", "2019-04") become the first day
    of the period only when `allow_partial` (history such as a diagnosis onset); measurements and
    the birth date are read with `date_span`, which keeps the whole span."""
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


def date_span(value: Any) -> tuple[date | None, date | None]:
    """(first day, last day) a FHIR date stands for: the same day twice for a full date, the month
    or the year for a partial one; (None, None) when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None, None
    return _span(value.strip())


def day_of(value: Any, last: bool = False) -> date | None:
    """The first (or, with `last`, the last) day a FHIR date stands for; None when unreadable."""
    first, final = date_span(value)
    return final if last else first


@functools.lru_cache(maxsize=4096)
def _span(value: str) -> tuple[date | None, date | None]:
    match = _DATE.match(value)
    if not match:
        return None, None
    year, month, day = match.groups()
    try:
        if day is not None:
            exact = date(int(year), int(month), int(day))
            return exact, exact
        if month is not None:
            first = date(int(year), int(month), 1)
            return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return date(int(year), 1, 1), date(int(year), 12, 31)
    except ValueError:
        return None, None


def effective_span(resource: Mapping) -> tuple[date | None, date | None, str | None]:
    """When an Observation was measured, as (first day, last day, None) or (None, None, reason):
    effectiveDateTime / effectiveInstant, else the end of effectivePeriod (the result exists once
    the period is over), else its start, else `issued`. A partial date gives its span."""
    measured = resource.get("effectiveDateTime")
    if isinstance(measured, str):
        # Nearly every Observation says when it was measured this way: read it without gathering the others.
        first, last = date_span(measured)
        if first is not None:
            return first, last, None
    candidates: list[Any] = [measured, resource.get("effectiveInstant")]
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        candidates += [period.get("end"), period.get("start")]
    candidates.append(resource.get("issued"))
    reason = "no effective date or issued date"
    for candidate in candidates:
        if candidate is None:
            continue
        first, last = date_span(candidate)
        if first is not None:
            return first, last, None
        reason = parse_date(candidate)[1] or reason
    return None, None, reason


def age_span(birth: tuple[date, date], on: tuple[date, date]) -> tuple[float, float] | None:
    """(youngest, oldest) age over every birth day and measurement day the two spans allow;
    None when the measurement may precede the birth."""
    youngest = age_years(birth[1], on[0])
    oldest = youngest if birth[0] == birth[1] and on[0] == on[1] else age_years(birth[0], on[1])
    if youngest is None or oldest is None:
        return None
    return youngest, oldest


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
