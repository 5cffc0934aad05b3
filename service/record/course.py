"""How long a medication is taken (or planned to be): the end of its course, read from the resource.

Used by the chronic-corticosteroid rule (service/policy/steroids.py), which needs to tell a 5-day course
from long-term therapy. Read, in order: the period the medication was taken (`effectivePeriod.end` of a
MedicationStatement or MedicationAdministration); the dosage's `timing.repeat.boundsPeriod.end`; the
start plus `timing.repeat.boundsDuration`; the start plus the supply a request dispenses
(`dispenseRequest.expectedSupplyDuration` × (1 + `numberOfRepeatsAllowed`)). None when nothing says.
A partial date ("2025-03") is read as its first day, or its last with `last=True` (dates.day_of).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Mapping

from .codes import as_list
from .dates import day_of

# UCUM units of time (and their common spellings) → days.
_DAYS_PER_UNIT = {"h": 1 / 24, "d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7,
                  "mo": 30.4375, "month": 30.4375, "months": 30.4375, "a": 365.25, "year": 365.25, "years": 365.25}


def duration_days(quantity: Any) -> float | None:
    """A FHIR Duration in days, or None when its value or unit cannot be read."""
    if not isinstance(quantity, Mapping) or not isinstance(quantity.get("value"), (int, float)):
        return None
    unit = quantity.get("code") if isinstance(quantity.get("code"), str) else quantity.get("unit")
    per = _DAYS_PER_UNIT.get(unit.strip().lower()) if isinstance(unit, str) else None
    return None if per is None or quantity["value"] < 0 else quantity["value"] * per


def _after(start: date | None, days: float | None) -> date | None:
    return start + timedelta(days=days) if start is not None and days is not None else None


def course_end(resource: Mapping, start: date | None, last: bool = False) -> date | None:
    """When the course ended or is planned to end (see the module docstring), or None."""
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        end = day_of(period.get("end"), last)
        if end is not None:
            return end
    for dosage in as_list(resource.get("dosageInstruction")) + as_list(resource.get("dosage")):
        repeat = dosage.get("timing", {}).get("repeat") if isinstance(dosage, Mapping) and \
            isinstance(dosage.get("timing"), Mapping) else None
        if not isinstance(repeat, Mapping):
            continue
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, Mapping):
            end = day_of(bounds.get("end"), last)
            if end is not None:
                return end
        end = _after(start, duration_days(repeat.get("boundsDuration")))
        if end is not None:
            return end
    dispense = resource.get("dispenseRequest")
    if isinstance(dispense, Mapping):
        supply = duration_days(dispense.get("expectedSupplyDuration"))
        repeats = dispense.get("numberOfRepeatsAllowed")
        fills = 1 + (repeats if isinstance(repeats, int) and repeats >= 0 else 0)
        end = _after(start, supply * fills if supply is not None else None)
        if end is not None:
            return end
    return None
