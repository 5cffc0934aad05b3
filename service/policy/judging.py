"""Choosing the value a measurement criterion judges, and judging it against the policy's limit.

`select` picks the newest usable value (current) or the newest before the first mecasermin therapy
(baseline), with the criterion's stale-data rule; `judge` compares it exactly, three-valued
(service.policy.compare), and returns a `Criterion` whose `why` is a code with the values the wording
needs (service.wording.criteria) — never a sentence. A criterion type reads its candidates from the
record (service.policy.criteria) and hands them here.
"""
from __future__ import annotations

import heapq
from functools import cached_property
from datetime import date
from typing import Any, Callable, Mapping

from service.policy.compare import NOT_MET, UNKNOWN, compare, format_against
from service.policy.context import Context, months_between
from service.policy.decision import Criterion, Evidence, Limit, Reason
from service.record.exact import Number
from service.record.frozen import frozen, replace


@frozen
class Candidate:
    date: date
    score: Number                 # the value compared, exactly (SDS, ug/L, years, cm/year as a Fraction)
    comparator: str | None
    # The evidence, or how to make it: a long chart has hundreds of heights, and only the one chosen
    # and those shown beside it are ever made.
    given: Evidence | Callable[[], Evidence]
    rank: int = 0                 # lower wins on the same date (reported scores before computed ones)
    reference_range: tuple[float, float, str] | None = None   # IGF-1: (low, high, unit) of the lab range
    # A partial date leaves the value between two ends (height SDS, age): decided only if both agree.
    score_range: tuple[float, float] | None = None

    @cached_property
    def evidence(self) -> Evidence:
        return self.given() if callable(self.given) else self.given


@frozen
class Later:
    """A value passed over whose evidence is made only when it is shown: a long chart passes over
    hundreds of heights, and only the newest few are shown beside the one judged (`relevant`)."""
    date: date | None
    make: Callable[[], Evidence]


@frozen
class Selection:
    chosen: Candidate | None
    skipped: tuple[Evidence, ...]  # values on file that could not be used, with why
    problem: Reason | None         # why nothing could be chosen
    missing_test: str | None = None


def limits(spec: Mapping[str, Any]) -> tuple[Limit, ...]:
    """The criterion's rule as the policy file states it."""
    if spec["type"] == "bone_age":
        return tuple(Limit(spec[sex].get("op"), spec[sex]["threshold"], "a", sex) for sex in ("female", "male"))
    if spec["type"] == "diagnosis":
        return ()
    return (Limit(spec.get("op"), spec.get("threshold"), spec.get("unit")),)


def criterion(spec: Mapping[str, Any], basis: str, status: str, evidence, why: Reason, *,
              missing_test: str | None = None, reason: str | None = None, caveat: Reason | None = None) -> Criterion:
    return Criterion(spec["id"], spec["title"], status, tuple(evidence), why, limits(spec), spec.get("threshold_text"),
                     missing_test if basis == "current" and status == UNKNOWN else None, basis, spec["type"],
                     reason, caveat)


def select(ctx: Context, spec: Mapping[str, Any], basis: str, candidates: list[Candidate],
            skipped: list[Evidence | Later], missing_test: str | None) -> Selection:
    """The value to judge: newest (current) or newest before treatment (baseline), with stale rule."""
    if basis == "baseline":
        if ctx.treatment_start is None:
            return Selection(None, relevant(skipped, None), Reason("no-treatment-start"))
        # A result dated only to a month or year counts as pre-treatment only if its last day is.
        before = [c for c in candidates if last_day(ctx, c) < ctx.treatment_start]
        later = [c for c in candidates if c.date >= ctx.treatment_start]
        either = [c for c in candidates if c.date < ctx.treatment_start <= last_day(ctx, c)]
        skipped = skipped + [_noted(c, "during-treatment") for c in later] + \
            [_noted(c, "may-be-after-start") for c in either]
        if not before:
            return Selection(None, relevant(skipped, None),
                             Reason("no-baseline-value", {"treatment_start": ctx.treatment_start}))
        candidates = before
    if not candidates:
        return Selection(None, relevant(skipped, None), Reason("no-value"), missing_test)
    chosen = min(candidates, key=lambda c: (-c.date.toordinal(), c.rank))     # the first of equals, as a sort keeps
    max_age = spec.get("max_age_days")
    if basis == "current" and max_age and (ctx.today - chosen.date).days > max_age:
        facts = {"date": chosen.date, "date_last": last_day(ctx, chosen), "max_age_days": max_age,
                 "months": months_between(chosen.date, ctx.today)}
        if (ctx.today - last_day(ctx, chosen)).days <= max_age:
            # Some days of a partial date are inside the window, some outside: not decidable.
            return Selection(None, (with_note(chosen.evidence, "may-be-too-old"),) + relevant(skipped, None),
                             Reason("stale-partial-date", facts), missing_test)
        return Selection(None, (with_note(chosen.evidence, "too-old"),) + relevant(skipped, None),
                         Reason("stale", facts), missing_test)
    return Selection(chosen, relevant(skipped, chosen), None)


def last_day(ctx: Context, candidate: Candidate) -> date:
    """The last day a candidate's date stands for: its measurement's `date_last` when the date is partial."""
    for m in ctx.record.partially_dated:
        if m.reference == candidate.evidence.reference and m.date == candidate.date:
            return m.date_last
    return candidate.date


MAX_SKIPPED = 3


def relevant(skipped: list[Evidence | Later], chosen: Candidate | None) -> tuple[Evidence, ...]:
    """Values passed over that a reader would expect to be used: newer than the one chosen, newest first."""
    kept = [e for e in skipped if chosen is None or e.date is None or e.date >= chosen.date]
    # The newest MAX_SKIPPED, equal dates in their order: sorted(…, reverse=True)[:MAX_SKIPPED], without the sort.
    newest = heapq.nlargest(MAX_SKIPPED, kept, key=lambda e: e.date.toordinal() if e.date else 0)
    return tuple(e.make() if isinstance(e, Later) else e for e in newest)


def _noted(candidate: Candidate, code: str) -> Later:
    return Later(candidate.date, lambda: with_note(candidate.evidence, code))


def with_note(evidence: Evidence, code: str) -> Evidence:
    return replace(evidence, notes=evidence.notes + (Reason(code),))


def value_facts(chosen: Candidate, op: str | None, threshold: Number | None, **more) -> dict[str, Any]:
    """What the wording needs to show the judged value: the value compared (exactly), its comparator,
    date and partial-date ends, and the limit it was judged against."""
    return {"value": chosen.score, "comparator": chosen.comparator, "date": chosen.date,
            "range": chosen.score_range, "op": op, "limit": threshold, **more}


def judge(spec, basis, selection: Selection, facts: Callable[[Candidate], dict[str, Any]],
           op: str | None = None, threshold: float | None = None, note: Reason | None = None,
           unknown_note: Callable[[Candidate], Reason | None] | None = None) -> Criterion:
    """Compare the selected candidate with the threshold. `note` is the caveat when the criterion is
    not met; `unknown_note` (given the candidate) when a bound cannot decide. `facts` gives what the
    wording needs to show the candidate."""
    if op is None:
        op, threshold = spec.get("op"), spec.get("threshold")
    missing_test = spec.get("missing_test")
    if selection.chosen is None:
        return criterion(spec, basis, UNKNOWN, selection.skipped, selection.problem,
                         missing_test=selection.missing_test, reason="no-value")
    chosen = selection.chosen
    evidence = (chosen.evidence,) + selection.skipped
    shown = facts(chosen)
    if threshold is None:
        return criterion(spec, basis, UNKNOWN, evidence,
                         Reason("limit-unknown", {**shown, "verify_note": spec.get("verify_note")}),
                         reason="limit-unknown")
    status = compare(chosen.score, chosen.comparator, op, threshold)
    if chosen.score_range is not None:
        ends = {compare(end, chosen.comparator, op, threshold) for end in chosen.score_range}
        if len(ends) > 1:
            return criterion(spec, basis, UNKNOWN, evidence, Reason("partial-date-both-sides", shown),
                             reason="undecidable")
        status = ends.pop()
    else:
        evidence = (shown_against(chosen, op, threshold),) + selection.skipped
    if status == UNKNOWN:
        return criterion(spec, basis, UNKNOWN, evidence, Reason("bound", shown), missing_test=missing_test,
                         reason="undecidable", caveat=unknown_note(chosen) if unknown_note else None)
    return criterion(spec, basis, status, evidence, Reason(status, shown),
                     caveat=note if status == NOT_MET else None)


def shown_against(chosen: Candidate, op: str, threshold: Number) -> Evidence:
    """The judged evidence with its compared figure written so that it reads as the decision does:
    the SDS when an SDS was compared, else the value ("2.4991 cm/year", never "2.5", below 2.5)."""
    e = chosen.evidence
    if e.sds is not None:
        shown = format_against(chosen.score, op, threshold, 2)
        return replace(e, sds_text=shown if shown[:1] in "-j" else f"+{shown}")
    if isinstance(e.value, (int, float)):
        return replace(e, value_text=format_against(chosen.score, op, threshold, 2))
    return e
