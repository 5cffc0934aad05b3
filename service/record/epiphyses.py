"""Evidence that the epiphyses are open or closed, found in free text (spec §2: no standard code).

Closed epiphyses contraindicate mecasermin, so a phrase that denies closure ("no epiphyseal
fusion", "epiphyses not yet closed") must never read as closure: open/negated phrases are
matched first and removed before closure is looked for. Hedged phrases ("partially fused",
"closing", "closure is nearly complete") are neither and yield nothing. Report-style lines with
a colon or dash ("Growth plates: closed", "Epiphyses - fused") are read like prose.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Iterable, Mapping

from .codes import as_list
from .dates import parse_date
from .model import EpiphysesEvidence

_PLATES = r"(?:epiphys(?:es|is|eal\s+plates?|eal\s+growth\s+plates?)|growth\s+plates?|physes|physeal\s+plates?)"
_CLOSURE = r"(?:closure|fusion)"
# Between the growth plates and what is said of them: a space, or a colon or dash as in a
# structured report line ("Growth plates: closed", "Epiphyses - fused").
_SEP = r"(?:\s*[:\-\u2013\u2014]\s*|\s+)"
_HEDGE = re.compile(r"\b(?:partial(?:ly)?|near(?:ly)?|almost|incomplete(?:ly)?|beginning|early|closing|fusing)\W+$",
                    re.IGNORECASE)

_OPEN = re.compile("|".join([
    rf"\b(?:open|unfused|patent)\s+{_PLATES}",
    rf"\b{_PLATES}{_SEP}(?:are\s+|is\s+|remain\s+|remains\s+)?(?:still\s+)?(?:open|unfused|patent|not\s+(?:yet\s+)?(?:closed|fused))\b",
    rf"\b(?:no|without)\s+(?:evidence\s+of\s+|signs?\s+of\s+)?(?:epiphyseal|physeal|growth\s+plate)\s+{_CLOSURE}",
]), re.IGNORECASE)

_CLOSED = re.compile("|".join([
    rf"\b(?:closed|fused)\s+{_PLATES}",
    rf"\b{_PLATES}{_SEP}(?:are\s+|is\s+|have\s+|has\s+)?(?:now\s+)?(?:completely\s+|fully\s+)?(?:closed|fused)\b",
    rf"\b(?:complete\s+)?(?:epiphyseal|physeal|growth\s+plate)\s+{_CLOSURE}",
    rf"\b(?:complete\s+)?{_CLOSURE}\s+of\s+(?:the\s+)?{_PLATES}",
]), re.IGNORECASE)

# "Epiphyseal closure: not yet", "epiphyseal fusion absent" deny the closure that precedes them.
_DENIED_AFTER = re.compile(r"^\W*(?:is\s+|has\s+)?(?:not|absent|none|pending|no)\b", re.IGNORECASE)
# "Epiphyseal closure is nearly complete", "epiphyseal fusion is incomplete", "… appears to be
# partial": a hedge within the next few words of the same clause makes the closure partial.
_HEDGED_AFTER = re.compile(
    r"^[^\w.;,\n]*(?:[\w-]+[^\w.;,\n]+){0,3}?"
    r"(?:near(?:ly)?|almost|partial(?:ly)?|partly|incomplete(?:ly)?|not\s+(?:yet\s+)?(?:complete|full)|"
    r"beginning|begun|early|ongoing|underway|in\s+progress|progressing|starting|impending)\b",
    re.IGNORECASE)

# Characters either side of a closure mention in which a hedge or denial is looked for.
_WINDOW = 160
# A cheap test before the regexes: most resources never mention growth plates.
_HINT = re.compile(r"epiphys|physe|physes|growth\s+plate", re.IGNORECASE)


def find(texts: Iterable[str], reference: str, when: date | None) -> list[EpiphysesEvidence]:
    """Evidence from the given texts of one resource: at most one "open" and one "closed"."""
    texts = list(texts)
    if not _HINT.search(" | ".join(texts)):
        return []
    found: dict[str, EpiphysesEvidence] = {}
    for text in texts:
        if not text or not _HINT.search(text):
            continue
        opened = _OPEN.search(text)
        if opened:
            found.setdefault("open", EpiphysesEvidence("open", opened.group(0), reference, when))
        # What is said open cannot also be read as closed ("open, not closed growth plates").
        remainder = _OPEN.sub(" ", text) if opened else text
        for match in _CLOSED.finditer(remainder):
            # Only the words next to a mention can hedge or deny it: bounded windows keep a long
            # text linear (a whole prefix per mention was quadratic: 84 kB took 7 s).
            before = remainder[max(0, match.start() - _WINDOW):match.start()]
            after = remainder[match.end():match.end() + _WINDOW]
            if _HEDGE.search(before) or _DENIED_AFTER.match(after) or _HEDGED_AFTER.match(after):
                continue
            found.setdefault("closed", EpiphysesEvidence("closed", match.group(0), reference, when))
            break
    return list(found.values())


def texts_of(resource: dict) -> list[str]:
    """Every human-readable text of an Observation, Condition or DiagnosticReport that may
    describe the growth plates: code, values, conclusion, notes, interpretation. Read straight
    from the JSON (no code-system look-ups): this runs on most resources of a chart."""
    out: list[str] = []
    _strings(resource.get("code"), out)
    _strings(resource.get("valueCodeableConcept"), out)
    for field in ("valueString", "conclusion"):
        value = resource.get(field)
        if isinstance(value, str):
            out.append(value)
    for field in ("conclusionCode", "interpretation", "note", "component"):
        for item in as_list(resource.get(field)):
            if isinstance(item, dict):
                if isinstance(item.get("text"), str):
                    out.append(item["text"])
                _strings(item.get("code"), out)
                _strings(item.get("valueCodeableConcept"), out)
                if isinstance(item.get("valueString"), str):
                    out.append(item["valueString"])
                for coding in as_list(item.get("coding")):
                    if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                        out.append(coding["display"])
    return out


def _strings(concept: object, out: list[str]) -> None:
    if not isinstance(concept, dict):
        return
    if isinstance(concept.get("text"), str):
        out.append(concept["text"])
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            out.append(coding["display"])


def text_date(resource: Mapping) -> date | None:
    """The date a text finding refers to (effective, issued, onset, recorded)."""
    for field in ("effectiveDateTime", "issued", "onsetDateTime", "recordedDate"):
        when, _ = parse_date(resource.get(field), allow_partial=True)
        if when is not None:
            return when
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        for field in ("end", "start"):
            when, _ = parse_date(period.get(field), allow_partial=True)
            if when is not None:
                return when
    return None
