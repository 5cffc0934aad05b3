"""One way to put a piece of evidence into words, for every surface that shows it: the cards, the
SMART app and its letter, and the command line. Same value, unit, date and score wherever a
clinician reads them (numbers through service.wording.numbers).

Chart-derived text (a Condition's or Observation's display, a note) enters card markdown through
`evidence_name` and `evidence_text` only, so that it can be escaped in one place."""
from __future__ import annotations

from service.policy.compare import format_number
from service.policy.decision import Evidence
from service.record.frozen import replace
from service.wording.criteria import age_text, interval
from service.wording.exclusions import COURSES
from service.wording.findings import under_age
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


def _born(facts) -> str | None:
    if facts.get("birth_date_text") is not None:
        return f"born {facts['birth_date_text']} (partial date)"
    return f"born {facts['birth_date'].isoformat()}" if facts.get("birth_date") else None


def _not_used(default: str):
    return lambda r: f"not used: {r.get('why') or default}"


# Evidence.notes: code → its words (service.policy writes the codes, with the values they name)
def _velocity_span(label: str):
    return lambda r: (f"{label}: {format_number(r['start'][0], 1)} cm on {r['start'][1].isoformat()} to "
                      f"{format_number(r['end'][0], 1)} cm on {r['end'][1].isoformat()}")


def _role_status(r) -> str:
    return r.get("note") or ("not current" if r["status"] == "current" else r["status"])


NOTES = {
    "velocity-on-treatment": _velocity_span("on treatment"),
    "velocity-before-treatment": _velocity_span("before treatment"),
    "not-paired-partial-date": lambda r: "not paired: a partial date gives no interval in days",
    "role-status": _role_status,
    "dose-limit-order": lambda r: "; ".join(t for t in (r.get("dose_note"), r.get("frequency_text")) if t) or None,
    "partial-date": lambda r: f"dated only as {r['date'].isoformat()} to {r['date_last'].isoformat()} (partial date)",
    "preliminary": lambda r: "preliminary result",
    "unusable": _not_used("unusable"),
    "order-reason": lambda r: "order reason",
    "condition": lambda r: f"condition ({r.get('clinical_status') or 'status not stated'})",
    "medication": lambda r: f"{r['category']}, status {r.get('status') or 'not stated'}",
    "documents-antibodies": lambda r: "documents neutralising anti-GH antibodies",
    "verification-status": lambda r: f"verification status {r['status']}",
    "during-treatment": lambda r: "during treatment, not a baseline value",
    "may-be-after-start": lambda r: "partial date: may be from after the start of treatment",
    "may-be-too-old": lambda r: "may be too old to use",
    "too-old": lambda r: "too old to use",
    # The record's reason already names the range ("… between −4.20 and −3.11 depending on the day").
    "sds-range": lambda r: r["why"] or (f"SDS {format_number(r['low'], 2)} to {format_number(r['high'], 2)} "
                                        f"depending on the day"),
    "no-sds": _not_used("no SDS"),
    "no-date": lambda r: "not used: no date",
    "sds-from-cdc-table": lambda r: "SDS computed from the CDC 2000 stature-for-age table",
    "no-value-or-date": lambda r: "not used: no value or date",
    "centile-out-of-range": lambda r: "not used: centile outside 0–100",
    "reported-centile": lambda r: "reported height-for-age centile",
    "reported-centile-as-sds": lambda r: "reported height-for-age centile, as SDS",
    "reported-sds": lambda r: "reported height-for-age SDS",
    "no-igf1-sds": _not_used("no reference range and no z-score"),
    "sds-from-range": lambda r: (f"SDS from the reference range {format_number(r['low'])}–{format_number(r['high'])} "
                                 f"{r['unit']}"),
    "sds-at-extraction": lambda r: "SDS as computed at extraction",
    "reported-z-score": lambda r: "reported IGF-1 z-score",
    "baseline-gh": lambda r: "baseline (unstimulated) GH, not a stimulation test",
    "method": lambda r: f"method: {r['method']}",
    "read-from-text": lambda r: f"read from the text \u201c{r['text']}\u201d",
    "interval": interval,
    "age": _born,
    "under-age": lambda r: None,
    "allergy-status": lambda r: (f"criticality {r.get('criticality') or 'not stated'}, clinical status "
                                 f"{r.get('clinical_status') or 'not stated'}, verification "
                                 f"{r.get('verification') or 'not stated'}"),
    "mg-per-dose": lambda r: f"{format_number(r['mg'])} mg per dose",
    **COURSES,
}


def word_evidence(e: Evidence) -> Evidence:
    """The evidence with its notes (`Evidence.notes`, codes) worded into `note`; an age's display is
    worded too, and a coded-only allergy is named as such."""
    if not e.notes:
        return e
    display, value = e.display, e.value
    for n in e.notes:
        if n.code == "age":
            display = age_text(n)
        elif n.code == "under-age":
            display = under_age(n)
        elif n.code == "allergy-status" and value is None:
            value = f"{n['substance']} (coded)"
    texts = [e.note] + [NOTES[n.code](n) for n in e.notes]
    return replace(e, display=display, value=value, note="; ".join(t for t in texts if t) or None)
