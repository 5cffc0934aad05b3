"""Medication categories as data (label.yaml `medication_categories`): how other therapy on file is told.

A category names its products (ingredients and brands) as whole words of the medication's text and
codings, open-ended families by a word's start or end (every "insulin …", every "…somatropin" INN),
and at most a few phrases (regular expressions, tried only when no name matched). Categories are
tried in file order; the first that names a word of the medication wins. `mecasermin` is not listed:
prior mecasermin is recognised as the trigger recognises the order (service/trigger.py).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, Mapping
from .frozen import frozen

MECASERMIN = "mecasermin"
_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def tokens(words: str) -> set[str]:
    """The words of a text, lower-cased, with hyphenated words also split ("solu-medrol" → solu, medrol).
    One tokenising pass, then set look-ups: a regex alternation of ~90 names per medication would
    dominate the time to build a record."""
    found = set(_WORD.findall(words.lower()))
    for token in [t for t in found if "-" in t]:
        found.update(token.split("-"))
    return found


@frozen
class MedicationCategory:
    id: str
    title: str
    names: frozenset[str]
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    phrases: tuple[re.Pattern, ...] = ()
    # Only systemic use counts (a corticosteroid given by an inhaled, nasal or skin route does not).
    systemic_only: bool = False
    # Products of the category read as physiological replacement, not pharmacologic therapy
    # (hydrocortisone for adrenal insufficiency): service/policy/steroids.py.
    replacement_names: frozenset[str] = frozenset()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "MedicationCategory":
        lower = lambda key: tuple(str(v).lower() for v in data.get(key, ()))  # noqa: E731
        return cls(data["id"], data["title"], frozenset(lower("names")), lower("prefixes"), lower("suffixes"),
                   tuple(re.compile(p, re.IGNORECASE) for p in data.get("phrases", ())),
                   bool(data.get("systemic_only", False)), frozenset(lower("replacement_names")))

    def names_word(self, words: set[str]) -> bool:
        return bool(words & self.names) or any(
            w.startswith(self.prefixes) for w in words if self.prefixes) or any(
            w.endswith(self.suffixes) for w in words if self.suffixes)

    def is_replacement(self, text: str | None) -> bool:
        return bool(self.replacement_names) and bool(tokens(text or "") & self.replacement_names)


@frozen
class MedicationCategories:
    categories: tuple[MedicationCategory, ...]

    @classmethod
    def from_data(cls, items: Iterable[Mapping[str, Any]]) -> "MedicationCategories":
        return cls(tuple(MedicationCategory.from_data(item) for item in items))

    @property
    def ids(self) -> tuple[str, ...]:
        return (MECASERMIN,) + tuple(c.id for c in self.categories)

    def get(self, category_id: str) -> MedicationCategory | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def category_of(self, words: str) -> MedicationCategory | None:
        found = tokens(words)
        for category in self.categories:
            if category.names_word(found):
                return category
        return next((c for c in self.categories if any(p.search(words) for p in c.phrases)), None)


@lru_cache(maxsize=1)
def shipped_categories() -> MedicationCategories:
    """The shipped label's categories, for callers that do not pass the label they use."""
    from service.policy.loader import load_label   # the policy layer reads the record: import at call time
    return load_label().medication_categories
