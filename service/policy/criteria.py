"""Measurement criteria: height SDS, IGF-1 SDS, stimulated GH peak, bone age, growth velocity, age.

Each evaluator reads its candidates from the record and its thresholds from the policy file, and
returns a three-valued `Criterion` through service.policy.judging (a code with its values, no sentence:
service.wording.criteria words it). Initial authorization uses the most recent usable value (subject
to the criterion's `max_age_days` stale-data rule); at re-authorization, carried-over criteria use the
baseline value: the latest one dated before the first mecasermin therapy (no stale-data rule: baseline
values are old by nature).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from service.policy.compare import MET, NOT_MET, UNKNOWN, centile_from_sds, compare, satisfied, sds_from_centile
from service.policy.context import SCOPES, Context, measurement_evidence
from service.policy.decision import Criterion, Evidence, Reason
from service.policy.judging import (Candidate, Later, Selection, criterion, judge, last_day, relevant, select,
                                    value_facts)
from service.record.model import Height
from service.record.velocity import cm_per_year, pre_treatment_velocity

# ------------------------------------------------------------------------------------- height

def _height_candidates(ctx: Context) -> tuple[list[Candidate], list[Evidence | Later]]:
    # A chart holds hundreds of heights: their evidence is made only for those shown (Candidate, Later).
    candidates: list[Candidate] = []
    skipped: list[Evidence | Later] = []
    for h in ctx.record.heights:
        if h.usable and h.sds is None and h.sds_range is not None and h.date is not None:
            candidates.append(Candidate(h.date, h.sds_range[1], None, lambda h=h: measurement_evidence(
                h, notes=(Reason("sds-range", {"low": h.sds_range[0], "high": h.sds_range[1], "why": h.sds_reason}),)),
                1, score_range=h.sds_range))
            continue
        if not h.usable or h.sds is None or h.date is None:
            skipped.append(Later(h.date, lambda h=h: measurement_evidence(h, notes=_passed_over(h))))
            continue
        candidates.append(Candidate(h.date, h.sds, None, lambda h=h: measurement_evidence(
            h, sds=h.sds, centile=h.centile if h.centile is not None else centile_from_sds(h.sds),
            notes=(Reason("sds-from-cdc-table"),)), 1))
    mirrored = {(s.reference, s.date) for s in ctx.record.height_scores if s.kind == "height_sds"}
    for s in ctx.record.height_scores:
        if s.kind == "height_centile" and (s.reference, s.date) in mirrored:
            continue   # the extractor also gives this centile as an SDS entry
        if not s.usable or s.value is None or s.date is None:
            skipped.append(measurement_evidence(s, notes=(Reason("no-value-or-date"),) if s.usable else ()))
            continue
        if s.kind == "height_centile":
            sds = sds_from_centile(s.value)
            if sds is None:
                skipped.append(measurement_evidence(s, notes=(Reason("centile-out-of-range"),)))
                continue
            candidates.append(Candidate(s.date, sds, s.comparator, measurement_evidence(
                s, sds=sds, centile=s.value, notes=(Reason("reported-centile"),)), 0))
        else:
            from_centile = s.original_unit == "%" or s.code in ("8303-0", "1153605006")
            candidates.append(Candidate(s.date, s.value, s.comparator, measurement_evidence(
                s, sds=s.value, centile=centile_from_sds(s.value),
                notes=(Reason("reported-centile-as-sds" if from_centile else "reported-sds"),)), 0))
    return candidates, skipped


def _passed_over(h: Height) -> tuple[Reason, ...]:
    """Why a height gave no candidate (none when it is not usable: its evidence says why)."""
    if not h.usable:
        return ()
    return (Reason("no-sds", {"why": h.sds_reason}) if h.sds is None else Reason("no-date"),)


def _height_facts(c: Candidate, op: str | None, threshold: float | None) -> dict[str, Any]:
    centile = c.evidence.centile if c.evidence.centile is not None else centile_from_sds(c.score)
    measured = c.evidence.value if c.evidence.kind == "height" else None
    return value_facts(c, op, threshold, centile=centile, measured=measured)


def height_sds(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = _height_candidates(ctx)
    selection = select(ctx, spec, basis, candidates, skipped, "height")
    note = None
    amb = spec.get("ambiguity")
    if (selection.chosen and amb and satisfied(selection.chosen.score, ">=", amb["low"])
            and satisfied(selection.chosen.score, "<=", amb["high"])):
        note = Reason("policy-note", {"text": amb["note"]})
    return judge(spec, basis, selection, lambda c: _height_facts(c, spec.get("op"), spec.get("threshold")),
                  note=note)


# -------------------------------------------------------------------------------------- IGF-1

def _igf1_candidates(ctx: Context) -> tuple[list[Candidate], list[Evidence]]:
    candidates, skipped = [], []
    for r in ctx.record.igf1:
        sds = r.sds   # for "<15" the extractor gives the SDS of the bound; the comparator stays with it
        if not r.usable or sds is None or r.date is None:
            skipped.append(measurement_evidence(r, notes=(Reason("no-igf1-sds", {"why": r.sds_reason}),) if r.usable else ()))
            continue
        has_range = r.range_low is not None and r.range_high is not None
        ref = (Reason("sds-from-range", {"low": r.range_low, "high": r.range_high, "unit": r.unit}) if has_range
               else Reason("sds-at-extraction"))
        candidates.append(Candidate(r.date, sds, r.comparator, measurement_evidence(r, sds=sds, notes=(ref,)), 1,
                                    (r.range_low, r.range_high, r.unit) if has_range else None))
    for s in ctx.record.igf1_scores:
        if not s.usable or s.value is None or s.date is None:
            skipped.append(measurement_evidence(s))
            continue
        candidates.append(Candidate(s.date, s.value, s.comparator,
                                    measurement_evidence(s, sds=s.value, notes=(Reason("reported-z-score"),)), 0))
    return candidates, skipped


def _igf1_facts(c: Candidate, op: str | None, threshold: float | None) -> dict[str, Any]:
    e = c.evidence
    measured = (e.comparator, e.value, e.unit) if e.kind == "igf1" else None
    return value_facts(c, op, threshold, measured=measured)


def igf1_value_at_sds(low: float, high: float, sds: float) -> float | None:
    """The IGF-1 concentration at `sds` for a reference range read as ±2 SD of the log values (docs/clinical-rules.md)."""
    if low <= 0 or high <= low:
        return None
    mid = (math.log(low) + math.log(high)) / 2
    sd = (math.log(high) - math.log(low)) / 4
    return math.exp(mid + sds * sd)


def _igf1_unknown_note(spec) -> Callable[[Candidate], Reason | None]:
    """For a '<x' result that cannot decide: the value is below the lab's reporting limit, and what the
    threshold SDS corresponds to for the reference range, when it can be computed."""
    def note(c: Candidate) -> Reason | None:
        if c.comparator not in ("<", "<="):
            return None
        threshold = spec.get("threshold")
        facts: dict[str, Any] = {}
        if threshold is not None and c.reference_range is not None:
            low, high, unit = c.reference_range
            at = igf1_value_at_sds(low, high, threshold)
            if at is not None:
                facts = {"range": (low, high), "unit": unit, "sds": threshold, "value_at_sds": at}
        return Reason("below-reporting-limit", facts)
    return note


# The laboratory's reference range is read as ±2 SD (docs/clinical-rules.md): an IGF-1 SDS of −2 or more
# is within the range, i.e. not low at all.
LOW_IGF1_SDS = -2.0


def igf1_sds(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = _igf1_candidates(ctx)
    selection = select(ctx, spec, basis, candidates, skipped, "igf1")
    # "Less severe IGF-1 deficiency" (the policy's note) is for a low IGF-1 above the limit; a normal IGF-1
    # is simply the criterion not met.
    note = Reason("policy-note", {"text": spec["note"]}) if spec.get("note") else None
    chosen = selection.chosen
    if chosen is not None and chosen.score >= LOW_IGF1_SDS and chosen.comparator not in ("<", "<="):
        note = Reason("igf1-within-range", {"sds": LOW_IGF1_SDS})
    return judge(spec, basis, selection, lambda c: _igf1_facts(c, spec.get("op"), spec.get("threshold")),
                  note=note, unknown_note=_igf1_unknown_note(spec))


# ----------------------------------------------------------------------------------------- GH

def gh_peak(spec, ctx: Context, basis: str) -> Criterion:
    stimulated, skipped = [], []
    for g in ctx.record.gh_results:
        if not g.usable or g.value is None or g.date is None:
            skipped.append(measurement_evidence(g))
        elif not g.stimulated:
            skipped.append(measurement_evidence(g, notes=(Reason("baseline-gh"),)))
        else:
            stimulated.append(Candidate(g.date, g.value, g.comparator, measurement_evidence(g)))
    if basis == "baseline":
        if ctx.treatment_start is None:
            return criterion(spec, basis, UNKNOWN, skipped + [c.evidence for c in stimulated],
                             Reason("no-treatment-start"))
        stimulated = [c for c in stimulated if last_day(ctx, c) < ctx.treatment_start]
    if not stimulated:
        baseline_only = any(not g.stimulated for g in ctx.record.gh_results)
        return criterion(spec, basis, UNKNOWN, skipped,
                         Reason("baseline-gh-only" if baseline_only else "no-stimulation-test"),
                         missing_test=spec["missing_test"])
    peak = max(stimulated, key=lambda c: (c.score, c.comparator in (">", ">=")))
    evidence = tuple(c.evidence for c in sorted(stimulated, key=lambda c: -c.score)) + relevant(skipped, None)
    if spec.get("threshold") is None:
        return criterion(spec, basis, UNKNOWN, evidence,
                         Reason("limit-unknown", {**value_facts(peak, None, None),
                                                  "verify_note": spec.get("verify_note")}), reason="limit-unknown")
    statuses = [compare(c.score, c.comparator, spec["op"], spec["threshold"]) for c in stimulated]
    if MET in statuses:
        best = max((c for c, status in zip(stimulated, statuses) if status == MET), key=lambda c: c.score)
        return criterion(spec, basis, MET, evidence, Reason("peak-met", value_facts(best, spec["op"], spec["threshold"])))
    if all(s == NOT_MET for s in statuses):
        return criterion(spec, basis, NOT_MET, evidence,
                         Reason("peak-not-met", value_facts(peak, spec["op"], spec["threshold"], tests=len(stimulated))))
    return criterion(spec, basis, UNKNOWN, evidence, Reason("peak-bound", {"op": spec["op"], "limit": spec["threshold"]}),
                     missing_test=spec["missing_test"])


# ----------------------------------------------------------------------------------- bone age

def bone_age(spec, ctx: Context, basis: str) -> Criterion:
    candidates, skipped = [], []
    for b in ctx.record.bone_ages:
        if not b.usable or b.value is None or b.date is None:
            skipped.append(measurement_evidence(b))
        else:
            notes = ((Reason("method", {"method": b.method}),) if b.method else ()) + \
                ((Reason("read-from-text", {"text": b.source_text}),) if b.source_text else ())
            candidates.append(Candidate(b.date, b.value, b.comparator, measurement_evidence(b, notes=notes)))
    selection = select(ctx, spec, basis, candidates, skipped, "bone-age")
    sex = ctx.sex
    if sex not in ("female", "male"):
        evidence = ((selection.chosen.evidence,) if selection.chosen else ()) + selection.skipped
        return criterion(spec, basis, UNKNOWN, evidence, Reason("sex-unknown"))
    limit = spec[sex]
    return judge(spec, basis, selection, lambda c: value_facts(c, limit.get("op"), limit["threshold"], sex=sex),
                  op=limit.get("op"), threshold=limit["threshold"])


# ---------------------------------------------------------------------------------- velocity

def growth_velocity(spec, ctx: Context, basis: str) -> Criterion:
    gv = ctx.record.growth_velocity
    if gv is None or gv.cm_per_year is None or gv.end is None or gv.end.date is None:
        evidence = [measurement_evidence(h) for h in (gv.start, gv.end) if h is not None] if gv else []
        return criterion(spec, basis, UNKNOWN, evidence,
                         Reason("no-velocity", {"record_reason": gv.reason if gv is not None else None}),
                         missing_test=spec["missing_test"])
    start, end = gv.start, gv.end
    dated_start = start is not None and start.date is not None
    interval = {"start": (start.value, start.date) if dated_start else None, "end": (end.value, end.date)}
    note = None
    if ctx.treatment_start and dated_start and start.date < ctx.treatment_start:
        note = Reason("interval-before-treatment", {"treatment_start": ctx.treatment_start})
    velocity = Evidence(kind="growth_velocity", value=gv.cm_per_year, unit="cm/year", date=end.date,
                        reference=end.reference, notes=(Reason("interval", interval),))
    exact_velocity = cm_per_year(start, end) if dated_start else gv.cm_per_year
    candidate = Candidate(end.date, exact_velocity, None, velocity)
    skipped = [measurement_evidence(h) for h in (start, end) if h is not None]
    max_age = spec.get("max_age_days")
    if max_age and (ctx.today - end.date).days > max_age:
        return criterion(spec, basis, UNKNOWN, [velocity] + skipped,
                         Reason("stale-velocity", {"date": end.date, "max_age_days": max_age}),
                         missing_test=spec["missing_test"])
    selection = Selection(candidate, tuple(skipped), None)
    return judge(spec, basis, selection,
                  lambda c: value_facts(c, spec.get("op"), spec.get("threshold"), interval=interval), note=note)


# ------------------------------------------------------------------ velocity gain over baseline

def velocity_gain(spec, ctx: Context, basis: str) -> Criterion:
    """The response judged against the child's own baseline: the velocity on mecasermin minus the
    velocity before it (each from two heights at least 6 calendar months apart, service/record/velocity.py),
    compared exactly. Unknown, with the reason, when either velocity cannot be computed."""
    def unknown(evidence, why: Reason) -> Criterion:
        return criterion(spec, "current", UNKNOWN, evidence, why, missing_test=spec.get("missing_test"),
                         reason="no-value")

    if ctx.treatment_start is None:
        return unknown([], Reason("no-treatment-start" if ctx.reauthorization else "no-prior-therapy"))
    start = ctx.treatment_start
    on, partial = ctx.record.growth_velocity, _partially_dated_heights(ctx)
    if on is None or on.cm_per_year is None or on.start is None or on.end is None:
        evidence = [measurement_evidence(h) for h in (on.start, on.end) if h is not None] if on else []
        return unknown(evidence + partial, Reason("no-velocity-on-treatment", {
            "record_reason": on.reason if on is not None else None, "treatment_start": start}))
    max_age = spec.get("max_age_days")
    if max_age and (ctx.today - on.end.date).days > max_age:
        return unknown([measurement_evidence(on.end)],
                       Reason("stale-velocity", {"date": on.end.date, "max_age_days": max_age}))
    before = pre_treatment_velocity([h for h in ctx.record.heights if h.date_last is None], start)
    if before.cm_per_year is None:
        evidence = [measurement_evidence(h) for h in (before.start, before.end) if h is not None]
        return unknown(evidence + partial, Reason("no-velocity-before-treatment", {
            "record_reason": before.reason, "treatment_start": start}))
    rates = {label: (cm_per_year(pair.start, pair.end), pair) for label, pair in (("on", on), ("before", before))}
    gain = rates["on"][0] - rates["before"][0]
    spans = {label: {"rate": rate, "start": (pair.start.value, pair.start.date), "end": (pair.end.value, pair.end.date)}
             for label, (rate, pair) in rates.items()}
    shown = Evidence(kind="growth_velocity_gain", value=float(gain), unit="cm/year", date=on.end.date,
                     reference=on.end.reference)
    each = [Evidence(kind="growth_velocity", value=float(rate), unit="cm/year", date=pair.end.date,
                     reference=pair.end.reference, notes=(Reason(f"velocity-{label}-treatment", spans[label]),))
            for label, (rate, pair) in rates.items()]
    selection = Selection(Candidate(on.end.date, gain, None, shown), tuple(each), None)
    return judge(spec, "current", selection,
                 lambda c: value_facts(c, spec.get("op"), spec.get("threshold"), spans=spans))


def _partially_dated_heights(ctx: Context) -> list[Evidence]:
    """Heights dated only to a month or a year: they cannot give an interval in days, and say so."""
    return [measurement_evidence(h, notes=(Reason("not-paired-partial-date"),))
            for h in ctx.record.heights if h.date_last is not None][:3]


# --------------------------------------------------------------------------------------- age

def age(spec, ctx: Context, basis: str) -> Criterion:
    patient = ctx.record.patient
    if patient is None or patient.age_range is None:
        return criterion(spec, "current", UNKNOWN, [], Reason("no-birth-date"))
    youngest, oldest = patient.age_range
    facts = {"youngest": youngest, "oldest": oldest, "birth_date": patient.birth_date,
             "birth_date_text": patient.birth_date_text, "today": ctx.today}
    evidence = Evidence(kind="age", value=oldest, unit="years", date=ctx.today, reference=patient.reference,
                        notes=(Reason("age", facts),))
    ends = None if youngest == oldest else (youngest, oldest)
    selection = Selection(Candidate(ctx.today, oldest, None, evidence, score_range=ends), (), None)
    return judge(spec, "current", selection, lambda c: value_facts(c, spec.get("op"), spec.get("threshold"), age=facts))


EVALUATORS: dict[str, Callable[[Mapping[str, Any], Context, str], Criterion]] = {
    "height_sds": height_sds,
    "igf1_sds": igf1_sds,
    "gh_peak": gh_peak,
    "bone_age": bone_age,
    "growth_velocity": growth_velocity,
    "velocity_gain": velocity_gain,
    "age": age,
}

# What each criterion type reads, as scopes (for failed queries and refused resources).
RESOURCE_TYPES: dict[str, tuple[str, ...]] = {kind: SCOPES[kind] for kind in EVALUATORS}
