"""One way to put a piece of evidence into words, for every surface that shows it: the cards, the
SMART app and its letter, and the command line. Same value, unit, date and score wherever a
clinician reads them (numbers through service.wording.numbers).

Chart-derived text (a Condition's or Observation's display, a note) enters card markdown through
`evidence_name` and `evidence_text` only, so that it can be escaped in one place."""
from __future__ import annotations

from service.policy.decision import Evidence
from service.wording.numbers import centile, number, quantity, signed, unit_text


def evidence_name(e: Evidence) -> str:
    """What the value is, as the chart or the evaluator names it (chart-derived text)."""
    return e.display or e.kind.replace("_", " ")


def evidence_value(e: Evidence) -> str | None:
    """'< 15 ng/mL (SDS −4.2)', '116.1 cm (SDS −2.68, centile 0.4)', or None for a fact without a value."""
    if e.kind == "diagnosis" or e.value is None:
        return None
    shown = quantity(e.value_text if e.value_text is not None else e.value, e.unit, e.comparator)
    sds = e.sds_text if e.sds_text is not None else e.sds
    scores = ([f"SDS {signed(sds)}"] if sds is not None else []) + \
        ([centile(e.centile)] if e.centile is not None else [])
    return f"{shown} ({', '.join(scores)})" if scores else shown


def recorded_as(e: Evidence) -> str | None:
    """The value as the chart wrote it, only when converting changed the number (45.7 in → 116.1 cm);
    a unit spelled differently (ng/mL for µg/L, 'yr' for years) is not worth a note."""
    if e.original_value is None or not e.original_unit or e.original_unit == e.unit:
        return None
    try:
        same = float(e.original_value) == float(e.value)
    except (TypeError, ValueError):
        same = False
    return None if same else f"recorded as {number(e.original_value)} {unit_text(e.original_unit)}".rstrip()


def evidence_text(evidence: Evidence, *, label: bool = False, reference: bool = False) -> str:
    """'100.4 cm (SDS −3.42, centile 0.1) on 2026-10-20 — note'.

    `label` starts with what the value is ("IGF-1: 18 ng/mL"), for lists that lack a criterion
    column; `reference` ends with the FHIR resource it came from, for the command line.
    """
    e = evidence
    name = evidence_name(e)
    parts = []
    value = evidence_value(e)
    if e.kind == "diagnosis":
        code = e.code or (e.value if isinstance(e.value, str) else None)
        parts.append(f"{name} ({code})" if code and code not in name else name)
    elif value is not None:
        parts.append(f"{name}: {value}" if label else value)
    else:
        parts.append(name)
    recorded = recorded_as(e)
    if recorded:
        parts.append(f"({recorded})")
    if e.date:
        parts.append(f"on {e.date.isoformat()}")
    if reference and e.reference:
        parts.append(f"[{e.reference}]")
    text = " ".join(parts)
    return f"{text} — {e.note}" if e.note else text
