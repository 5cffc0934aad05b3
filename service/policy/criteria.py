"""Measurement criteria: height SDS, IGF-1 SDS, stimulated GH peak, bone age, growth velocity, age.

Each evaluator reads its thresholds from the policy file and returns a three-valued `Criterion`.
Initial authorization uses the most recent usable value (subject to the criterion's `max_age_days`
stale-data rule); at re-authorization, carried-over criteria use the baseline value: the latest one
dated before the first mecasermin therapy (no stale-data rule: baseline values are old by nature).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from service.policy.compare import (MET, NOT_MET, UNKNOWN, centile_from_sds, compare, comparator_text, format_against,
                                    format_age, format_number, satisfied, sds_from_centile)
from service.policy.context import Context, measurement_evidence, months_between
from service.policy.decision import Criterion, Evidence
from service.record.exact import Number
from service.wording.numbers import centile as centile_words, limit
from service.record.velocity import cm_per_year, pre_treatment_velocity

VERIFY = "The plan's limit is not known — verify with the plan."


def _ask_plan(spec) -> str:
    return f"Ask the plan for its current limit. {spec.get('verify_note', '')}".strip()


@dataclass(frozen=True)
class Candidate:
    date: date
    score: Number                 # the value compared, exactly (SDS, ug/L, years, cm/year as a Fraction)
    comparator: str | None
    evidence: Evidence
    rank: int = 0                 # lower wins on the same date (reported scores before computed ones)
    reference_range: tuple[float, float, str] | None = None   # IGF-1: (low, high, unit) of the lab range
    # A partial date leaves the value between two ends (height SDS, age): decided only if both agree.
    score_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class Selection:
    chosen: Candidate | None
    skipped: tuple[Evidence, ...]  # values on file that could not be used, with why
    problem: str | None            # why nothing could be chosen
    documentation: str | None = None
    missing_test: str | None = None


def _op_text(spec: Mapping[str, Any], unit: str | None = None, score: bool = False) -> str:
    return limit(spec["op"], spec["threshold"], unit, score=score)


# What a payer's dose or quantity limit (`type: dose_limit`, service/policy/dose_limits.py) is about.
QUANTITY_UNITS = {"mg_per_kg_per_dose": "mg/kg per dose", "mg_per_kg_per_day": "mg/kg per day",
                  "doses_per_day": "doses a day", "ml_per_30_days": "mL per 30 days",
                  "vials_per_30_days": "vials per 30 days"}


def threshold_text(spec: Mapping[str, Any], basis: str) -> str:
    if spec.get("threshold_text"):
        text = spec["threshold_text"]
    elif spec["type"] == "dose_limit" and spec.get("threshold") is not None:
        text = f"{QUANTITY_UNITS[spec['quantity']]} {limit(spec['op'], spec['threshold'])}"
    elif spec["type"] == "bone_age":
        parts = [f"{sex} {'not known' if spec[sex]['threshold'] is None else _op_text(spec[sex], 'a')}"
                 for sex in ("female", "male")]
        text = "bone age: " + ", ".join(parts)
    elif spec.get("threshold") is None:
        text = "limit not known — verify with the plan"
    else:
        label = {"height_sds": "height SDS", "igf1_sds": "IGF-1 SDS", "gh_peak": "peak stimulated GH",
                 "growth_velocity": "growth velocity", "velocity_gain": "growth velocity gain over the pre-treatment velocity",
                 "age": "age"}[spec["type"]]
        text = f"{label} {_op_text(spec, spec.get('unit'), spec['type'] in ('height_sds', 'igf1_sds'))}"
        if spec["type"] == "height_sds":
            text += f" ({centile_words(centile_from_sds(spec['threshold']))})"
    return text + (" (pre-treatment value)" if basis == "baseline" else "")


def _select(ctx: Context, spec: Mapping[str, Any], basis: str, candidates: list[Candidate],
            skipped: list[Evidence], what: str, missing_test: str | None) -> Selection:
    """The value to judge: newest (current) or newest before treatment (baseline), with stale rule."""
    if basis == "baseline":
        if ctx.treatment_start is None:
            return Selection(None, _relevant(skipped, None),
                             f"The start date of the earlier mecasermin therapy is not on file, so the pre-treatment {what} cannot be identified.",
                             f"The date mecasermin was started, and the pre-treatment {what}.")
        # A result dated only to a month or year counts as pre-treatment only if its last day is.
        before = [c for c in candidates if _last_day(ctx, c) < ctx.treatment_start]
        later = [c.evidence for c in candidates if c.date >= ctx.treatment_start]
        either = [c.evidence for c in candidates if c.date < ctx.treatment_start <= _last_day(ctx, c)]
        skipped = skipped + [_with_note(e, "during treatment, not a baseline value") for e in later] + \
            [_with_note(e, "partial date: may be from after the start of treatment") for e in either]
        if not before:
            return Selection(None, _relevant(skipped, None),
                             f"No {what} from before mecasermin was started ({ctx.treatment_start.isoformat()}) is on file.",
                             f"The pre-treatment {what} (before {ctx.treatment_start.isoformat()}).")
        candidates = before
    if not candidates:
        return Selection(None, _relevant(skipped, None), f"No usable {what} is on file.",
                         f"A {what} result.", missing_test)
    chosen = sorted(candidates, key=lambda c: (-c.date.toordinal(), c.rank))[0]
    max_age = spec.get("max_age_days")
    if basis == "current" and max_age and (ctx.today - chosen.date).days > max_age:
        age = months_between(chosen.date, ctx.today)
        if (ctx.today - _last_day(ctx, chosen)).days <= max_age:
            # Some days of a partial date are inside the window, some outside: not decidable.
            return Selection(None, (_with_note(chosen.evidence, "may be too old to use"),) + _relevant(skipped, None),
                             f"The latest {what} is dated only from {chosen.date.isoformat()} to "
                             f"{_last_day(ctx, chosen).isoformat()}; the stale-data rule needs one from the last "
                             f"{max_age} days, which only some of those days are.",
                             f"A {what} from the last {max_age} days, with its full date.", missing_test)
        return Selection(None, (_with_note(chosen.evidence, "too old to use"),) + _relevant(skipped, None),
                         f"The latest {what} is from {chosen.date.isoformat()} ({age} months ago); the stale-data rule "
                         f"needs one from the last {max_age} days.",
                         f"A {what} from the last {max_age} days.", missing_test)
    return Selection(chosen, _relevant(skipped, chosen), None)


def _last_day(ctx: Context, candidate: Candidate) -> date:
    """The last day a candidate's date stands for: its measurement's `date_last` when the date is partial."""
    for m in ctx.record.partially_dated:
        if m.reference == candidate.evidence.reference and m.date == candidate.date:
            return m.date_last
    return candidate.date


MAX_SKIPPED = 3


def _relevant(skipped, chosen: Candidate | None) -> tuple[Evidence, ...]:
    """Values passed over that a reader would expect to be used: newer than the one chosen, newest first."""
    kept = [e for e in skipped if chosen is None or e.date is None or e.date >= chosen.date]
    kept.sort(key=lambda e: e.date.toordinal() if e.date else 0, reverse=True)
    return tuple(kept[:MAX_SKIPPED])


def _with_note(evidence: Evidence, note: str) -> Evidence:
    return replace(evidence, note="; ".join(n for n in (evidence.note, note) if n))


def _unknown(spec, ctx, basis, evidence, explanation, documentation, missing_test) -> Criterion:
    return Criterion(spec["id"], spec["title"], UNKNOWN, threshold_text(spec, basis), tuple(evidence), explanation,
                     documentation, missing_test if basis == "current" else None, basis)


def _judge(spec, ctx, basis, selection: Selection, describe: Callable[[Candidate], str],
           op: str | None = None, threshold: float | None = None, note: str | None = None,
           unknown_note: Callable[[Candidate], str | None] | None = None) -> Criterion:
    """Compare the selected candidate with the threshold and phrase the outcome. `note` is added when
    the criterion is not met; `unknown_note` (given the candidate) when a bound cannot decide."""
    if op is None:
        op, threshold = spec.get("op"), spec.get("threshold")
    missing_test = spec.get("missing_test")
    if selection.chosen is None:
        return replace(_unknown(spec, ctx, basis, selection.skipped, selection.problem, selection.documentation,
                                selection.missing_test), reason="no-value")
    chosen = selection.chosen
    evidence = (chosen.evidence,) + selection.skipped
    shown = describe(chosen)
    if threshold is None:
        return replace(_unknown(spec, ctx, basis, evidence, f"{shown} is on file. {VERIFY}", _ask_plan(spec), None),
                       reason="limit-unknown")
    status = compare(chosen.score, chosen.comparator, op, threshold)
    limit = f"{op} {format_number(threshold)}"
    if chosen.score_range is not None:
        ends = {compare(end, chosen.comparator, op, threshold) for end in chosen.score_range}
        if len(ends) > 1:
            return replace(_unknown(spec, ctx, basis, evidence,
                                    f"{shown}: a partial date leaves it on both sides of the limit ({limit}).",
                                    "The full date (day, month and year) of birth and of the measurement.", None),
                           reason="undecidable")
        status = ends.pop()
    else:
        evidence = (_shown_against(chosen, op, threshold),) + selection.skipped
    if status == MET:
        explanation = f"{shown} meets the limit ({limit})."
    elif status == NOT_MET:
        explanation = f"{shown} does not meet the limit ({limit})."
    else:
        explanation = f"{shown} is a bound that cannot show whether the value is {limit}."
        extra = unknown_note(chosen) if unknown_note else None
        if extra:
            explanation += f" {extra}"
    if note and status == NOT_MET:
        explanation += f" {note}"
    if status == UNKNOWN:
        return replace(_unknown(spec, ctx, basis, evidence, explanation, "A result reported as an exact number.",
                                missing_test), reason="undecidable")
    return Criterion(spec["id"], spec["title"], status, threshold_text(spec, basis), evidence, explanation, None, None,
                     basis, note=note if status == NOT_MET else None)


def _shown_against(chosen: Candidate, op: str, threshold: Number) -> Evidence:
    """The judged evidence with its compared figure written so that it reads as the decision does:
    the SDS when an SDS was compared, else the value ("2.4991 cm/year", never "2.5", below 2.5)."""
    e = chosen.evidence
    if e.sds is not None:
        shown = format_against(chosen.score, op, threshold, 2)
        return replace(e, sds_text=shown if shown[:1] in "-j" else f"+{shown}")
    if isinstance(e.value, (int, float)):
        return replace(e, value_text=format_against(chosen.score, op, threshold, 2))
    return e


# ------------------------------------------------------------------------------------- height

def _height_candidates(ctx: Context) -> tuple[list[Candidate], list[Evidence]]:
    candidates, skipped = [], []
    for h in ctx.record.heights:
        if h.usable and h.sds is None and h.sds_range is not None and h.date is not None:
            low, high = h.sds_range
            candidates.append(Candidate(h.date, high, None, measurement_evidence(
                h, note=f"SDS {format_number(low, 2)} to {format_number(high, 2)} depending on the day: {h.sds_reason}"),
                1, score_range=h.sds_range))
            continue
        if not h.usable or h.sds is None or h.date is None:
            why = (h.reason if not h.usable else h.sds_reason if h.sds is None else "no date") or "no SDS"
            skipped.append(measurement_evidence(h, note=f"not used: {why}" if h.usable else None))
            continue
        centile = h.centile if h.centile is not None else centile_from_sds(h.sds)
        candidates.append(Candidate(h.date, h.sds, None, measurement_evidence(
            h, sds=h.sds, centile=centile, note="SDS computed from the CDC 2000 stature-for-age table"), 1))
    mirrored = {(s.reference, s.date) for s in ctx.record.height_scores if s.kind == "height_sds"}
    for s in ctx.record.height_scores:
        if s.kind == "height_centile" and (s.reference, s.date) in mirrored:
            continue   # the extractor also gives this centile as an SDS entry
        if not s.usable or s.value is None or s.date is None:
            skipped.append(measurement_evidence(s, note=None if not s.usable else "not used: no value or date"))
            continue
        if s.kind == "height_centile":
            sds = sds_from_centile(s.value)
            if sds is None:
                skipped.append(measurement_evidence(s, note="not used: centile outside 0–100"))
                continue
            candidates.append(Candidate(s.date, sds, s.comparator, measurement_evidence(
                s, sds=sds, centile=s.value, note="reported height-for-age centile"), 0))
        else:
            from_centile = s.original_unit == "%" or s.code in ("8303-0", "1153605006")
            candidates.append(Candidate(s.date, s.value, s.comparator, measurement_evidence(
                s, sds=s.value, centile=centile_from_sds(s.value),
                note="reported height-for-age centile, as SDS" if from_centile else "reported height-for-age SDS"), 0))
    return candidates, skipped


def _describe_height(c: Candidate, op: str | None = None, threshold: float | None = None) -> str:
    shown_centile = c.evidence.centile if c.evidence.centile is not None else centile_from_sds(c.score)
    measured = f"{format_number(c.evidence.value, 1)} cm, " if c.evidence.kind == "height" else ""
    if c.score_range is not None:
        low, high = c.score_range
        return (f"Height {measured}SDS between {format_number(low, 2)} and {format_number(high, 2)} "
                f"on {c.date.isoformat()}")
    return (f"Height {measured}SDS {comparator_text(c.comparator)}{format_against(c.score, op, threshold, 2)} "
            f"({centile_words(shown_centile)}) on {c.date.isoformat()}")


def height_sds(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = _height_candidates(ctx)
    selection = _select(ctx, spec, basis, candidates, skipped, "height SDS", "height")
    note = None
    amb = spec.get("ambiguity")
    if (selection.chosen and amb and satisfied(selection.chosen.score, ">=", amb["low"])
            and satisfied(selection.chosen.score, "<=", amb["high"])):
        note = amb["note"]
    return _judge(spec, ctx, basis, selection, lambda c: _describe_height(c, spec.get("op"), spec.get("threshold")),
                  note=note)


# -------------------------------------------------------------------------------------- IGF-1

def _igf1_candidates(ctx: Context) -> tuple[list[Candidate], list[Evidence]]:
    candidates, skipped = [], []
    for r in ctx.record.igf1:
        sds = r.sds   # for "<15" the extractor gives the SDS of the bound; the comparator stays with it
        if not r.usable or sds is None or r.date is None:
            why = (r.sds_reason or "no reference range and no z-score") if r.usable else None
            skipped.append(measurement_evidence(r, note=f"not used: {why}" if why else None))
            continue
        ref = (f"SDS from the reference range {format_number(r.range_low)}–{format_number(r.range_high)} {r.unit}"
               if r.range_low is not None and r.range_high is not None else "SDS as computed at extraction")
        has_range = r.range_low is not None and r.range_high is not None
        candidates.append(Candidate(r.date, sds, r.comparator, measurement_evidence(r, sds=sds, note=ref), 1,
                                    (r.range_low, r.range_high, r.unit) if has_range else None))
    for s in ctx.record.igf1_scores:
        if not s.usable or s.value is None or s.date is None:
            skipped.append(measurement_evidence(s))
            continue
        candidates.append(Candidate(s.date, s.value, s.comparator,
                                    measurement_evidence(s, sds=s.value, note="reported IGF-1 z-score"), 0))
    return candidates, skipped


def _describe_igf1(c: Candidate, op: str | None = None, threshold: float | None = None) -> str:
    e = c.evidence
    value = (f"IGF-1 {comparator_text(e.comparator)}{format_number(e.value, 1)} {e.unit}, "
             if e.kind == "igf1" else "IGF-1 ")
    bound = "at most " if c.comparator in ("<", "<=") else "at least " if c.comparator in (">", ">=") else ""
    return f"{value}SDS {bound}{format_against(c.score, op, threshold, 2)} on {c.date.isoformat()}"


def igf1_value_at_sds(low: float, high: float, sds: float) -> float | None:
    """The IGF-1 concentration at `sds` for a reference range read as ±2 SD of the log values (docs/clinical-rules.md)."""
    if low <= 0 or high <= low:
        return None
    mid = (math.log(low) + math.log(high)) / 2
    sd = (math.log(high) - math.log(low)) / 4
    return math.exp(mid + sds * sd)


def _igf1_unknown_note(spec) -> Callable[[Candidate], str | None]:
    """For a '<x' result that cannot decide: the value is below the lab's reporting limit, and what the
    threshold SDS corresponds to for the reference range, when it can be computed."""
    def note(c: Candidate) -> str | None:
        if c.comparator not in ("<", "<="):
            return None
        threshold = spec.get("threshold")
        text = "The result is below the laboratory's reporting limit, so its exact SDS is not known."
        if threshold is not None and c.reference_range is not None:
            low, high, unit = c.reference_range
            at = igf1_value_at_sds(low, high, threshold)
            if at is not None:
                text += (f" For the reference range {format_number(low)}–{format_number(high)} {unit}, "
                         f"{format_number(threshold, 1)} SD corresponds to about {format_number(at, 1)} {unit}; "
                         f"a result reported to that level would settle it.")
        return text
    return note


# The laboratory's reference range is read as ±2 SD (docs/clinical-rules.md): an IGF-1 SDS of −2 or more
# is within the range, i.e. not low at all.
LOW_IGF1_SDS = -2.0


def igf1_sds(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = _igf1_candidates(ctx)
    selection = _select(ctx, spec, basis, candidates, skipped, "IGF-1 with an SDS (reference range or z-score)", "igf1")
    # "Less severe IGF-1 deficiency" (the policy's note) is for a low IGF-1 above the limit; a normal IGF-1
    # is simply the criterion not met.
    note = spec.get("note")
    chosen = selection.chosen
    if chosen is not None and chosen.score >= LOW_IGF1_SDS and chosen.comparator not in ("<", "<="):
        note = "The IGF-1 is within the laboratory's reference range (SDS -2 or above): it is not low."
    return _judge(spec, ctx, basis, selection, lambda c: _describe_igf1(c, spec.get("op"), spec.get("threshold")),
                  note=note, unknown_note=_igf1_unknown_note(spec))


# ----------------------------------------------------------------------------------------- GH

def gh_peak(spec, ctx: Context, basis: str) -> Criterion:
    stimulated, skipped = [], []
    for g in ctx.record.gh_results:
        if not g.usable or g.value is None or g.date is None:
            skipped.append(measurement_evidence(g))
        elif not g.stimulated:
            skipped.append(measurement_evidence(g, note="baseline (unstimulated) GH, not a stimulation test"))
        else:
            stimulated.append(Candidate(g.date, g.value, g.comparator, measurement_evidence(g)))
    if basis == "baseline":
        if ctx.treatment_start is None:
            return _unknown(spec, ctx, basis, skipped + [c.evidence for c in stimulated],
                            "The start date of the earlier mecasermin therapy is not on file, so pre-treatment GH tests cannot be identified.",
                            "The date mecasermin was started, and the pre-treatment GH stimulation test.", None)
        stimulated = [c for c in stimulated if _last_day(ctx, c) < ctx.treatment_start]
    if not stimulated:
        problem = ("Only a baseline (unstimulated) GH is on file; the criterion needs a stimulation test."
                   if any(not g.stimulated for g in ctx.record.gh_results) else "No GH stimulation test is on file.")
        return _unknown(spec, ctx, basis, skipped, problem, "A GH stimulation test result (peak GH).", spec["missing_test"])
    peak = max(stimulated, key=lambda c: (c.score, c.comparator in (">", ">=")))
    evidence = tuple(c.evidence for c in sorted(stimulated, key=lambda c: -c.score)) + _relevant(skipped, None)
    if spec.get("threshold") is None:
        return _unknown(spec, ctx, basis, evidence,
                        f"Peak stimulated GH {comparator_text(peak.comparator)}{format_number(peak.score)} ug/L on {peak.date.isoformat()} is on file. {VERIFY}",
                        _ask_plan(spec), None)
    statuses = [compare(c.score, c.comparator, spec["op"], spec["threshold"]) for c in stimulated]
    limit = f"{spec['op']} {format_number(spec['threshold'])} ug/L"
    tests = f"{len(stimulated)} stimulation test{'s' if len(stimulated) > 1 else ''}"
    if MET in statuses:
        best = max((c for c, status in zip(stimulated, statuses) if status == MET), key=lambda c: c.score)
        return Criterion(spec["id"], spec["title"], MET, threshold_text(spec, basis), evidence,
                         f"Stimulated GH {comparator_text(best.comparator)}{format_number(best.score)} ug/L on {best.date.isoformat()} meets the limit ({limit}).",
                         None, None, basis)
    if all(s == NOT_MET for s in statuses):
        return Criterion(spec["id"], spec["title"], NOT_MET, threshold_text(spec, basis), evidence,
                         f"The peak of {tests} is {comparator_text(peak.comparator)}{format_number(peak.score)} ug/L ({peak.date.isoformat()}), below the limit ({limit}).",
                         None, None, basis)
    return _unknown(spec, ctx, basis, evidence,
                    f"The GH results are bounds that cannot show a peak {limit}.",
                    "A stimulation test reported as exact numbers.", spec["missing_test"])


# ----------------------------------------------------------------------------------- bone age

def bone_age(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = [], []
    for b in ctx.record.bone_ages:
        if not b.usable or b.value is None or b.date is None:
            skipped.append(measurement_evidence(b))
        else:
            words = f"read from the text \u201c{b.source_text}\u201d" if b.source_text else None
            note = "; ".join(n for n in (f"method: {b.method}" if b.method else None, words) if n) or None
            candidates.append(Candidate(b.date, b.value, b.comparator, measurement_evidence(b, note=note)))
    selection = _select(ctx, spec, basis, candidates, skipped, "bone age", "bone-age")
    sex = ctx.sex
    if sex not in ("female", "male"):
        evidence = ((selection.chosen.evidence,) if selection.chosen else ()) + selection.skipped
        return _unknown(spec, ctx, basis, evidence,
                        "The patient's sex is not recorded as female or male, so the bone-age limit cannot be chosen.",
                        "The patient's sex (birth sex) in the record.", None)
    limit = spec[sex]

    def describe(c: Candidate) -> str:
        shown = format_against(c.score, limit.get("op"), limit.get("threshold"), 1)
        return f"Bone age {comparator_text(c.comparator)}{shown} y ({sex}) on {c.date.isoformat()}"

    if limit["threshold"] is None and selection.chosen is not None:
        return _unknown(spec, ctx, basis, (selection.chosen.evidence,) + selection.skipped,
                        f"{describe(selection.chosen)} is on file. {VERIFY}", _ask_plan(spec), None)
    return _judge(spec, ctx, basis, selection, describe, op=limit.get("op"), threshold=limit["threshold"])


# ---------------------------------------------------------------------------------- velocity

def growth_velocity(spec, ctx: Context, basis: str) -> Criterion:
    gv = ctx.record.growth_velocity
    if gv is None or gv.cm_per_year is None or gv.end is None or gv.end.date is None:
        why = (gv.reason if gv is not None and gv.reason else
               "no two heights at least 6 months apart, the later one the most recent, are on file")
        evidence = [measurement_evidence(h) for h in (gv.start, gv.end) if h is not None] if gv else []
        return _unknown(spec, ctx, basis, evidence, f"Growth velocity cannot be computed: {why}.",
                        "Two height measurements at least 6 months apart, the later one recent.", spec["missing_test"])
    start, end = gv.start, gv.end
    span = f"from {format_number(start.value, 1)} cm on {start.date.isoformat()} to {format_number(end.value, 1)} cm on {end.date.isoformat()}" \
        if start is not None and start.date is not None else f"ending {end.date.isoformat()}"
    note = None
    if ctx.treatment_start and start is not None and start.date is not None and start.date < ctx.treatment_start:
        note = f"The interval begins before mecasermin was started ({ctx.treatment_start.isoformat()})."
    velocity = Evidence(kind="growth_velocity", value=gv.cm_per_year, unit="cm/year", date=end.date,
                        reference=end.reference, note=span)
    exact_velocity = cm_per_year(start, end) if start is not None and start.date is not None else gv.cm_per_year
    candidate = Candidate(end.date, exact_velocity, None, velocity)
    skipped = [measurement_evidence(h) for h in (start, end) if h is not None]
    max_age = spec.get("max_age_days")
    if max_age and (ctx.today - end.date).days > max_age:
        return _unknown(spec, ctx, basis, [velocity] + skipped,
                        f"The latest height ({end.date.isoformat()}) is more than {max_age} days old, so the velocity is not current.",
                        f"A height measurement from the last {max_age} days.", spec["missing_test"])
    selection = Selection(candidate, tuple(skipped), None)
    return _judge(spec, ctx, basis, selection,
                  lambda c: f"Growth velocity {format_against(c.score, spec.get('op'), spec.get('threshold'), 2)} "
                            f"cm/year ({span})", note=note)


# ------------------------------------------------------------------ velocity gain over baseline

def velocity_gain(spec, ctx: Context, basis: str) -> Criterion:
    """The response judged against the child's own baseline: the velocity on mecasermin minus the
    velocity before it (each from two heights at least 6 calendar months apart, service/record/velocity.py),
    compared exactly. Unknown, with the reason, when either velocity cannot be computed."""
    unknown = lambda evidence, why, needed: replace(  # noqa: E731
        _unknown(spec, ctx, "current", evidence, why, needed, spec.get("missing_test")), reason="no-value")
    if ctx.treatment_start is None:
        why = ("No earlier mecasermin therapy is on file, so there is no response to measure."
               if not ctx.reauthorization else
               "The start date of the earlier mecasermin therapy is not on file, so the velocities before and on "
               "treatment cannot be told apart.")
        return unknown([], why, "The date mecasermin was started, with heights before and since.")
    on, partial = ctx.record.growth_velocity, _partially_dated_heights(ctx)
    if on is None or on.cm_per_year is None or on.start is None or on.end is None:
        why = on.reason if on is not None and on.reason else "no two heights on treatment are on file"
        evidence = [measurement_evidence(h) for h in (on.start, on.end) if h is not None] if on else []
        return unknown(evidence + partial, f"The growth velocity on treatment cannot be computed: {why}.",
                       f"Two heights since {ctx.treatment_start.isoformat()}, at least 6 months apart.")
    max_age = spec.get("max_age_days")
    if max_age and (ctx.today - on.end.date).days > max_age:
        return unknown([measurement_evidence(on.end)],
                       f"The latest height ({on.end.date.isoformat()}) is more than {max_age} days old, so the "
                       f"velocity on treatment is not current.", f"A height measurement from the last {max_age} days.")
    before = pre_treatment_velocity([h for h in ctx.record.heights if h.date_last is None], ctx.treatment_start)
    if before.cm_per_year is None:
        evidence = [measurement_evidence(h) for h in (before.start, before.end) if h is not None]
        return unknown(evidence + partial, f"The growth velocity before treatment cannot be computed: {before.reason}.",
                       f"Two heights before {ctx.treatment_start.isoformat()}, at least 6 months apart.")
    on_rate, before_rate = cm_per_year(on.start, on.end), cm_per_year(before.start, before.end)
    gain = on_rate - before_rate
    span = (f"{format_number(on_rate, 2)} cm/year on treatment, {on.start.date.isoformat()} to "
            f"{on.end.date.isoformat()}; {format_number(before_rate, 2)} cm/year before, "
            f"{before.start.date.isoformat()} to {before.end.date.isoformat()}")
    shown = Evidence(kind="growth_velocity_gain", value=float(gain), unit="cm/year", date=on.end.date,
                     reference=on.end.reference, note=span)
    rates = [Evidence(kind="growth_velocity", value=float(rate), unit="cm/year", date=pair.end.date,
                      reference=pair.end.reference, note=f"{label}: {format_number(pair.start.value, 1)} cm on "
                      f"{pair.start.date.isoformat()} to {format_number(pair.end.value, 1)} cm on {pair.end.date.isoformat()}")
             for label, rate, pair in (("on treatment", on_rate, on), ("before treatment", before_rate, before))]
    selection = Selection(Candidate(on.end.date, gain, None, shown), tuple(rates), None)
    return _judge(spec, ctx, "current", selection,
                  lambda c: f"A change of {format_against(c.score, spec.get('op'), spec.get('threshold'), 2)} cm/year "
                            f"over the pre-treatment velocity ({span})")


def _partially_dated_heights(ctx: Context) -> list[Evidence]:
    """Heights dated only to a month or a year: they cannot give an interval in days, and say so."""
    return [measurement_evidence(h, note="not paired: a partial date gives no interval in days")
            for h in ctx.record.heights if h.date_last is not None][:MAX_SKIPPED]


# --------------------------------------------------------------------------------------- age

def age(spec, ctx: Context, basis: str) -> Criterion:
    patient = ctx.record.patient
    if patient is None or patient.age_range is None:
        return _unknown(spec, ctx, "current", [], "The patient's birth date is not on file.",
                        "The patient's birth date.", None)
    youngest, oldest = patient.age_range
    if patient.birth_date_text is None:
        shown = format_age(oldest, birth_date=patient.birth_date, today=ctx.today)
        note = f"born {patient.birth_date.isoformat()}" if patient.birth_date else None
    else:
        shown = f"{format_number(youngest, 2)}–{format_number(oldest, 2)} years"
        note = f"born {patient.birth_date_text} (partial date)"
    evidence = Evidence(kind="age", value=oldest, unit="years", date=ctx.today,
                        reference=patient.reference, display=shown, note=note)
    ends = None if youngest == oldest else (youngest, oldest)
    selection = Selection(Candidate(ctx.today, oldest, None, evidence, score_range=ends), (), None)
    return _judge(spec, ctx, "current", selection, lambda c: f"Age {shown}")


EVALUATORS: dict[str, Callable[[Mapping[str, Any], Context, str], Criterion]] = {
    "height_sds": height_sds,
    "igf1_sds": igf1_sds,
    "gh_peak": gh_peak,
    "bone_age": bone_age,
    "growth_velocity": growth_velocity,
    "velocity_gain": velocity_gain,
    "age": age,
}

# Which FHIR resource types each criterion type reads (for technical gaps).
RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    "height_sds": ("Observation", "Patient"),
    "igf1_sds": ("Observation",),
    "gh_peak": ("Observation",),
    "bone_age": ("Observation", "Patient"),
    "growth_velocity": ("Observation",),
    "velocity_gain": ("Observation", "MedicationRequest", "MedicationStatement", "MedicationDispense",
                      "MedicationAdministration"),
    "age": ("Patient",),
}
