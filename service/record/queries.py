"""Questions the policy evaluator and the cards ask of a record, answered in one place."""
from __future__ import annotations

from typing import Iterable, TypeVar

from .model import GhResult, Measurement, PatientRecord

M = TypeVar("M", bound=Measurement)


def usable(facts: Iterable[M]) -> list[M]:
    """The usable facts with a value, in the record's order (newest first)."""
    return [f for f in facts if f.usable and f.value is not None]


def latest(facts: Iterable[M]) -> M | None:
    """The newest usable fact with a value, or None."""
    for fact in facts:
        if fact.usable and fact.value is not None:
            return fact
    return None


def peak_gh(record: PatientRecord) -> GhResult | None:
    """The highest stimulated GH result in µg/L (docs/clinical-rules.md; the baseline code is excluded).

    A result reported as "<x" is at most x, so it ranks below an exact x; one reported as ">x"
    is at least x and ranks above it. Its comparator stays on the result: a peak of "<12" does not
    show that GH reached 10 µg/L.
    """
    rank = {">": 1, ">=": 1, None: 0, "<=": -1, "<": -1}
    results = [g for g in usable(record.gh_results) if g.stimulated]
    if not results:
        return None
    return max(results, key=lambda g: (g.value, rank.get(g.comparator, 0)))
