"""Code sets from policy files: ICD-10-CM entries, SNOMED codes, text patterns, medication categories.

ICD-10-CM entries are written three ways in the files:
  "E34.321"      that code only;
  "E03*"         the code and every code below it (E03, E03.0 … E03.9);
  "C00-C96"      an inclusive range, each end with the codes below it (C50.911 is in C00-C96,
                 N18.30 is not in N18.4-N18.6).
SNOMED codes are compared exactly (no hierarchy: no terminology server is available). Text patterns
are Python regular expressions matched case-insensitively against a diagnosis's display or text.

Every text-pattern match in the policy layer goes through `text_matches`, which ignores negated
mentions (`is_negated`): "no evidence of malignancy", "not idiopathic short stature", "anti-GH
antibodies not detected", "ISS ruled out" do not count as the thing they name.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache
from typing import Iterable, Mapping

from service.record.codes import icd10_equal, icd10_in, icd10_normalise
from service.record.model import Diagnosis, MedicationFact
from service.record.frozen import frozen


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


@lru_cache(maxsize=1024)
def _any_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching wherever any of `patterns` matches: one scan of a long text tells whether any
    pattern can match at all (most texts match none), instead of one scan per pattern. None when the
    patterns cannot be joined (inline global flags, a group name used twice): each is scanned alone."""
    try:
        return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)
    except re.error:
        return None


# Negation cues, looked for within the same clause (no , ; . : | ( ) in between) as the match.
NEGATION_WINDOW_WORDS = 4
# How far (in characters) either side of a mention the cues are looked for: a few words, however
# long the text. Bounding the window keeps every scan linear in the text's size — each mention
# reads at most this much around it, never the whole prefix or suffix.
NEGATION_WINDOW_CHARS = 160
_CLAUSE_BREAK = re.compile(r"[,;.:|()\[\]]")
_NEGATION_BEFORE = re.compile(
    r"\b(no|not|without|negative\s+for|ruled\s+out|rule\s+out|r/o|absence\s+of|free\s+of|denies)\b",
    re.IGNORECASE)
_NEGATION_AFTER = re.compile(
    r"^\w*[\s-]*(?:\S+\s+){0,%d}?(?:(?<!not )(?:not\s+(?:detected|found|present|seen|identified)|negative|absent|"
    r"ruled\s+out|excluded))\b" % (NEGATION_WINDOW_WORDS - 1), re.IGNORECASE)
_NEGATING_PREFIX = re.compile(r"\bnon[- ]?$", re.IGNORECASE)


class Clauses:
    """Where the clauses of one text begin and end, found in one pass and then looked up by bisection.

    Repetitive text ("no cancer no cancer …") puts the same words around every mention: answers are
    remembered by that context (at most MEMO_SIZE of them), so a long text costs one look-up per mention."""

    MEMO_SIZE = 512

    def __init__(self, text: str):
        self.text = text
        self.breaks = [found.start() for found in _CLAUSE_BREAK.finditer(text)]
        self._memo: dict[tuple[str, str], bool] = {}

    def before(self, start: int) -> str:
        """The clause's text before `start`, at most NEGATION_WINDOW_CHARS of it, in whole words (a
        window cut inside "cannot" must not read as "not")."""
        i = bisect_left(self.breaks, start)
        clause_start = self.breaks[i - 1] + 1 if i else 0
        window_start = max(clause_start, start - NEGATION_WINDOW_CHARS)
        window = self.text[window_start:start]
        if window_start > clause_start and not self.text[window_start - 1].isspace():
            cut = next((k for k, char in enumerate(window) if char.isspace()), len(window))
            window = window[cut:]
        return window

    def after(self, end: int) -> str:
        """The clause's text from `end`, at most NEGATION_WINDOW_CHARS of it."""
        i = bisect_left(self.breaks, end)
        clause_end = self.breaks[i] if i < len(self.breaks) else len(self.text)
        return self.text[end:min(clause_end, end + NEGATION_WINDOW_CHARS)]

    def negated(self, start: int, end: int) -> bool:
        context = (self.before(start), self.after(end))
        answer = self._memo.get(context)
        if answer is None:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            answer = self._memo[context] = _negated_in(*context)
        return answer


def _negated_in(before: str, after: str) -> bool:
    if _NEGATING_PREFIX.search(before):
        return True
    words = before.split()[-NEGATION_WINDOW_WORDS:]
    if words and _NEGATION_BEFORE.search(" ".join(words)):
        return True
    return _NEGATION_AFTER.search(after) is not None


def is_negated(text: str, start: int, end: int) -> bool:
    """Is the mention text[start:end] negated? True when, within the same clause, it is preceded within
    a few words by no / not / without / negative for / ruled out (or directly by "non-"), or followed
    within a few words by not detected / negative / absent / ruled out / excluded."""
    return Clauses(text).negated(start, end)


def text_matches(patterns: Iterable[str], text: str | None, exclude: Iterable[str] = ()) -> str | None:
    """The first pattern's matched text that is not negated, or None (also None when the text matches
    one of the `exclude` patterns, e.g. "family history of"). One pass of each pattern over the text."""
    patterns = tuple(patterns)
    if not text or not patterns:
        return None
    any_pattern = _any_regex(patterns)
    if any_pattern is not None and any_pattern.search(text) is None:
        return None
    if any(_regex(pattern).search(text) for pattern in exclude):
        return None
    clauses: Clauses | None = None
    for pattern in patterns:
        for found in _regex(pattern).finditer(text):
            if not found.group(0):
                continue
            clauses = clauses or Clauses(text)
            if not clauses.negated(found.start(), found.end()):
                return found.group(0)
    return None


def any_pattern(patterns: Iterable[str], text: str | None) -> bool:
    """Does any pattern occur in the text (no negation check: for hedges such as "possible" or "?")."""
    return bool(text) and any(_regex(pattern).search(text) for pattern in patterns)


ABBREVIATION_MAX_WORDS_IN_CAPITALS = 3


def abbreviation_matches(patterns: Iterable[str], text: str | None, exclude: Iterable[str] = ()) -> str | None:
    """`text_matches` for case-sensitive abbreviations ("ALL", "AML"). A text written all in capitals
    says nothing by its case, so there an abbreviation counts only when the text is short ("B-ALL",
    "HISTORY OF ALL"), not in a long capitalised sentence where "ALL" is the English word."""
    if not text:
        return None
    if not any(c.islower() for c in text) and len(text.split()) > ABBREVIATION_MAX_WORDS_IN_CAPITALS:
        return None
    return text_matches(patterns, text, exclude)


@frozen
class CodeSet:
    icd10: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    requires_text: tuple[str, ...] = ()
    medication_categories: tuple[str, ...] = ()
    exclude_text: tuple[str, ...] = ()      # a text match does not count when the text also matches one of these
    # The match counts only when another diagnosis on file matches this set too (B20 with wasting R64;
    # obesity with a postmenopausal state): see `matches_beside`.
    together_with: "CodeSet | None" = None

    @classmethod
    def from_data(cls, data: Mapping | None) -> "CodeSet":
        data = data or {}
        together = data.get("together_with")
        return cls(**{key: tuple(str(v) for v in data.get(key, ())) for key in
                      ("icd10", "snomed", "text", "requires_text", "medication_categories",
                                  "exclude_text")},
                   together_with=cls.from_data(together) if together else None)

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
        return text_matches(self.text, diagnosis.display, self.exclude_text)

    def matches(self, diagnosis: Diagnosis, *, use_text: bool = True) -> bool:
        return self.code_match(diagnosis) or (use_text and self.text_match(diagnosis) is not None)

    def medication_match(self, medication: MedicationFact) -> bool:
        return medication.category in self.medication_categories


def any_match(codesets: Iterable[CodeSet], diagnosis: Diagnosis, *, use_text: bool = True) -> bool:
    return any(cs.matches(diagnosis, use_text=use_text) for cs in codesets)


def matches_beside(codesets: Iterable[CodeSet], diagnosis: Diagnosis, others: Iterable[Diagnosis], *,
                   use_text: bool = True) -> bool:
    """Like `any_match`, honouring `together_with`: such a set counts only when one of `others` (the
    other diagnoses on file and on the order) matches its companion set."""
    others = tuple(others)
    for cs in codesets:
        if not cs.matches(diagnosis, use_text=use_text):
            continue
        if cs.together_with is None or any(o is not diagnosis and cs.together_with.matches(o) for o in others):
            return True
    return False


def describe(diagnosis: Diagnosis) -> str:
    """'E34.321 Primary insulin-like growth factor-1 (IGF-1) deficiency' or the text alone."""
    parts = [p for p in (diagnosis.code, diagnosis.display) if p]
    return " ".join(parts) if parts else "(no code or text)"
