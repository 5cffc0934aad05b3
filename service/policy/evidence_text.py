"""One way to put a piece of evidence into words, for every surface that shows it: the cards, the
SMART app and its letter, and the command line. Same value, unit, original unit, date and score
wherever a clinician reads them."""
from __future__ import annotations

from typing import Any

from service.policy.decision import Evidence

# UCUM codes as a reader expects to see them.
UNIT_WORDS = {"a": "y", "mo": "months", "ug/L": "µg/L", "[in_i]": "in", "[lb_av]": "lb", "1": ""}


def fmt_number(value: Any) -> str:
    """2.50 → '2.5', 100.0 → '100'; strings pass through."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def unit_text(unit: str | None) -> str:
    return UNIT_WORDS.get(unit, unit) if unit else ""


def fmt_centile(centile: float) -> str:
    return "<0.01" if centile < 0.01 else f"{centile:.2f}".rstrip("0").rstrip(".")


def evidence_text(evidence: Evidence, *, label: bool = False, reference: bool = False) -> str:
    """'100.4 cm (SDS -3.42, centile 0.03) on 2026-10-20 — note'.

    `label` starts with what the value is ("IGF-1: 18 ng/mL"), for lists that lack a criterion
    column; `reference` ends with the FHIR resource it came from, for the command line.
    """
    e = evidence
    name = e.display or e.kind.replace("_", " ")
    parts = []
    if e.kind == "diagnosis":
        code = e.code or (e.value if isinstance(e.value, str) else None)
        parts.append(f"{name} ({code})" if code and code not in name else name)
    elif e.value is not None:
        value = f"{e.comparator or ''}{e.value_text or fmt_number(e.value)}"
        unit = unit_text(e.unit)
        value = f"{value} {unit}" if unit else value
        parts.append(f"{name}: {value}" if label else value)
    else:
        parts.append(name)
    if e.original_value is not None and e.original_unit and e.original_unit != e.unit:
        parts.append(f"(recorded as {fmt_number(e.original_value)} {unit_text(e.original_unit)})")
    sds = e.sds_text or (f"{e.sds:+.2f}" if e.sds is not None else None)
    scores = ([f"SDS {sds}"] if sds is not None else []) + \
        ([f"centile {fmt_centile(e.centile)}"] if e.centile is not None else [])
    if scores:
        parts.append(f"({', '.join(scores)})")
    if e.date:
        parts.append(f"on {e.date.isoformat()}")
    if reference and e.reference:
        parts.append(f"[{e.reference}]")
    text = " ".join(parts)
    return f"{text} — {e.note}" if e.note else text
