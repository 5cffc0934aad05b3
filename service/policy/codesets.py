"""Code sets from policy files: ICD-10-CM entries, SNOMED codes, text patterns, medication categories.

ICD-10-CM entries are written three ways in the files:
  "E34.321"      that code only;
  "E03*"         the code and every code below it (E03, E03.0 … E03.9);
  "C00-C96"      an inclusive range, each end with the codes below it (C50.911 is in C00-C96,
                 N18.30 is not in N18.4-N18.6).
SNOMED codes are compared exactly (no hierarchy: no terminology server is available). Text patterns
are Python regular expressions matched case-insensitively against a diagnosis's display or text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping

from service.record.codes import icd10_equal, icd10_in, icd10_normalise
from service.record.model import Diagnosis, MedicationFact


def normalise_icd10(code: str | None) -> str | None:
    """'e34321' / 'E34.321 ' → 'E34.321'; None when it does not look like an ICD-10-CM code."""
    return icd10_normalise(code)


@lru_cache(maxsize=4096)
def icd10_entry_matches(entry: str, code: str) -> bool:
    """Does `code` fall under one policy-file `entry` (exact, 'X*' or 'A-B')?"""
    if entry.endswith("*"):
        return icd10_in(code, entry[:-1])
    if "-" in entry:
        return icd10_in(code, entry)
    return icd10_equal(code, entry)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def text_matches(patterns: Iterable[str], text: str | None) -> str | None:
    """The first pattern's matched text, or None."""
    if not text:
        return None
    for pattern in patterns:
        found = _regex(pattern).search(text)
        if found:
            return found.group(0)
    return None


@dataclass(frozen=True)
class CodeSet:
    icd10: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    requires_text: tuple[str, ...] = ()
    medication_categories: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping | None) -> "CodeSet":
        data = data or {}
        return cls(**{key: tuple(str(v) for v in data.get(key, ())) for key in
                      ("icd10", "snomed", "text", "requires_text", "medication_categories")})

    def code_match(self, diagnosis: Diagnosis) -> bool:
        """Matched by its code (ignoring text patterns), honouring `requires_text`."""
        hit = False
        if diagnosis.system == "icd10cm":
            code = normalise_icd10(diagnosis.code)
            hit = code is not None and any(icd10_entry_matches(entry, code) for entry in self.icd10)
        elif diagnosis.system == "snomed":
            hit = (diagnosis.code or "").strip() in self.snomed
        if hit and self.requires_text:
            return text_matches(self.requires_text, diagnosis.display) is not None
        return hit

    def text_match(self, diagnosis: Diagnosis) -> str | None:
        return text_matches(self.text, diagnosis.display)

    def matches(self, diagnosis: Diagnosis, *, use_text: bool = True) -> bool:
        return self.code_match(diagnosis) or (use_text and self.text_match(diagnosis) is not None)

    def medication_match(self, medication: MedicationFact) -> bool:
        return medication.category in self.medication_categories


def any_match(codesets: Iterable[CodeSet], diagnosis: Diagnosis, *, use_text: bool = True) -> bool:
    return any(cs.matches(diagnosis, use_text=use_text) for cs in codesets)


def describe(diagnosis: Diagnosis) -> str:
    """'E34.321 Primary insulin-like growth factor-1 (IGF-1) deficiency' or the text alone."""
    parts = [p for p in (diagnosis.code, diagnosis.display) if p]
    return " ".join(parts) if parts else "(no code or text)"
