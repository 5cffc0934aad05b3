"""What counts as chronic corticosteroid therapy (a secondary cause of IGF-1 deficiency).

The policy's "chronic corticosteroid therapy" and the label's "chronic treatment with pharmacologic doses
of anti-inflammatory corticosteroids" mean long-term systemic therapy at pharmacologic doses. The rule
(docs/clinical-rules.md, "Codes and exclusions"):
- ICD-10-CM Z79.52 (long-term use of systemic steroids) counts on its own (matched as a code by the policy);
- an active systemic corticosteroid (the record reader drops inhaled, nasal, topical and other local
  routes) counts when it has been or is planned to be taken for three calendar months or more;
- a shorter course (a 5-day prednisolone burst) does not count; courses that follow one another (monthly
  dispenses or renewed prescriptions, a refill up to REFILL_GAP_DAYS late, one systemic corticosteroid
  replacing another) are one course, measured from the first one's start;
- hydrocortisone and cortisone are read as physiological replacement (adrenal insufficiency, CAH,
  hypopituitarism), which does not count; a pharmacologic hydrocortisone regimen is recorded as Z79.52;
- when the start or the length is not on file (started less than three months ago, no planned end),
  the course is unknown: documentation is needed, never a guess.
"""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Iterable

from service.record.categories import MedicationCategory
from service.policy.decision import Reason
from service.record.model import MedicationFact

CHRONIC_MONTHS = 3
# A course continues an earlier one when it starts at most this many days after the earlier one ended:
# a refill collected a few days late is the same therapy, a month off steroids is not.
REFILL_GAP_DAYS = 7
CHRONIC, SHORT, REPLACEMENT, UNKNOWN = "chronic", "short", "replacement", "unknown"


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later (the month's last day when it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def course_first(medication: MedicationFact, history: Iterable[MedicationFact],
                 category: MedicationCategory) -> MedicationFact:
    """The record that began the uninterrupted systemic corticosteroid therapy `medication` belongs to:
    itself, or the earliest of the courses it continues (each ending at most REFILL_GAP_DAYS before the
    next began). Courses whose start or end is not on file cannot be joined."""
    first = medication
    if medication.date is None:
        return first
    earlier = sorted((m for m in history if m.category == category.id and m is not medication
                      and m.date is not None and m.end is not None and not category.is_replacement(m.text)),
                     key=lambda m: m.date, reverse=True)
    for m in earlier:       # newest first: each joined course can only move the start earlier
        if m.date < first.date and m.end + timedelta(days=REFILL_GAP_DAYS) >= first.date:
            first = m
    return first


def steroid_course(medication: MedicationFact, today: date, category: MedicationCategory,
                   history: Iterable[MedicationFact] = ()) -> tuple[str, Reason]:
    """(chronic | short | replacement | unknown, why as a code with the course's dates) for a systemic
    corticosteroid of `category` (label.yaml: its `replacement_names`); `history` is every medication on
    file, active or not (earlier courses it continues). A partial date counts only when every day it
    stands for gives the same answer (docs/clinical-rules.md)."""
    def why(code: str, **facts) -> Reason:
        return Reason(code, {"medication": medication.text, "months": CHRONIC_MONTHS, **facts})

    if category.is_replacement(medication.text):
        return REPLACEMENT, why("replacement")
    first = course_first(medication, history, category)
    start, start_last = first.date, first.date_last or first.date
    end, end_last = medication.end, medication.end_last or medication.end
    if start is None:
        return UNKNOWN, why("no-start-date")
    if end is not None:
        if end >= add_months(start_last, CHRONIC_MONTHS):
            return CHRONIC, why("chronic-course", start=start, end=end_last)
        if end_last < add_months(start, CHRONIC_MONTHS):
            return SHORT, why("short-course", start=start, end=end_last)
        return UNKNOWN, why("partial-dates", start=start)
    if today >= add_months(start_last, CHRONIC_MONTHS):
        return CHRONIC, why("chronic-ongoing", start=start)
    if today >= add_months(start, CHRONIC_MONTHS):
        return UNKNOWN, why("partial-dates", start=start)
    return UNKNOWN, why("recent-start", start=start)
