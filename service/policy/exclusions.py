"""Exclusions: not medically necessary / investigational uses, read as docs/clinical-rules.md writes them.

For each exclusion rule of the policy (roles from the policy file):
- combination (e.g. somatropin): an active order or statement → does not meet, always (and the
  reason says to discontinue the somatropin order before signing if it is being stopped).
- cause / indication on the order's reasons: → does not meet; but when the order also gives a
  qualifying diagnosis → documentation needed (the plan will ask which is treated).
- cause recorded as an active Condition or active medication (not on the order):
  beside a qualifying (or possibly qualifying) diagnosis → documentation needed (secondary causes:
  the plan will ask why the deficiency is primary rather than caused by it; other conditions such as
  idiopathic short stature, Turner, Prader-Willi or Noonan syndrome: the plan will ask how severe
  primary IGF-1 deficiency was established despite it); with no such diagnosis → does not meet (it is the only explanation
  of the short stature on file). An `indication` rule is never triggered by a mere Condition.
A systemic corticosteroid counts only as chronic pharmacologic therapy (service/policy/steroids.py); one
whose course is not on file needs documentation. Text patterns are not applied to the resources the
diagnosis criterion itself recognised (so the
display "isolated growth hormone deficiency type IA" of 71003000 is not read as GH deficiency), negated
mentions ("ISS ruled out", "not idiopathic short stature") never match, and a recorded cause that is
only provisional, differential or unconfirmed does not count.
"""
from __future__ import annotations

from service.policy.codesets import describe, matches_beside
from service.policy.context import Context, diagnosis_evidence, medication_evidence
from service.policy.decision import Exclusion, Reason
from service.policy.diagnoses import TENTATIVE, DiagnosisReading
from service.policy.rules import ExclusionRule
from service.policy.steroids import CHRONIC, UNKNOWN, steroid_course
from service.record.model import Diagnosis

DOES_NOT_MEET = "does-not-meet"
DOCUMENTATION_NEEDED = "documentation-needed"
# Exclusions that are conditions in their own right, not causes of a secondary IGF-1 deficiency.
NOT_A_CAUSE = frozenset({"idiopathic-short-stature", "turner", "prader-willi", "noonan"})


def _hits(rule: ExclusionRule, diagnoses, reading: DiagnosisReading) -> list[Diagnosis]:
    """Diagnoses the rule matches; never one that qualifies (E23.0 documented as GH gene deletion with
    antibodies is not GH deficiency), and a `together_with` set only beside its companion diagnosis."""
    pool = reading.reasons + reading.conditions
    return [d for d in diagnoses if not reading.read_as_indication(d)
            and matches_beside(rule.match, d, pool, use_text=reading.uses_text(d))]


STEROIDS = "systemic-corticosteroid"    # the label's category whose course decides (service/policy/steroids.py)


def _chronic_steroids_only(medications, ctx: Context):
    """Systemic corticosteroids count only as chronic pharmacologic therapy (service.policy.steroids):
    (medications that count, [(medication, why) whose course is not on file])."""
    kept, undecided = [], []
    steroids = ctx.label.medication_categories.get(STEROIDS)
    for m in medications:
        if steroids is None or m.category != STEROIDS:
            kept.append(m)
            continue
        verdict, why = steroid_course(m, ctx.today, steroids, ctx.record.medications)
        if verdict == CHRONIC:
            kept.append(m)
        elif verdict == UNKNOWN:
            undecided.append((m, why))
    return kept, undecided


def _exclusion(rule: ExclusionRule, effect: str, basis: str, matched: str, evidence, code: str, **facts) -> Exclusion:
    return Exclusion(rule.id, rule.kind, rule.title, effect, basis, matched, tuple(evidence), Reason(code, facts))


def find_exclusions(ctx: Context, reading: DiagnosisReading) -> tuple[Exclusion, ...]:
    """The policy's exclusions that apply, each with its effect and a code (service.wording.exclusions)."""
    found: list[Exclusion] = []
    qualifying_on_order = bool(reading.qualifying_in_reasons)
    may_qualify = bool(reading.qualifying) or reading.possibly_qualifying
    for rule in ctx.policy.exclusions:
        medications = [m for m in ctx.record.medications
                       if m.active and any(cs.medication_match(m) for cs in rule.match)]
        medications, undecided = _chronic_steroids_only(medications, ctx)
        if rule.role == "combination":
            if medications:
                m = medications[0]
                found.append(_exclusion(rule, DOES_NOT_MEET, "medication", m.text,
                                        (medication_evidence(x) for x in medications), "used-together",
                                        reference=m.reference))
            continue
        on_order = _hits(rule, reading.reasons, reading)
        if on_order:
            matched = ", ".join(describe(d) for d in on_order)
            evidence = (diagnosis_evidence(d) for d in on_order)
            if qualifying_on_order:
                found.append(_exclusion(rule, DOCUMENTATION_NEEDED, "order-reason", matched, evidence,
                                        "beside-qualifying-order"))
            else:
                found.append(_exclusion(rule, DOES_NOT_MEET, "order-reason", matched, evidence, "order-reason"))
            continue
        if rule.role != "cause":
            continue
        recorded = [d for d in _hits(rule, reading.conditions, reading) if d.verification_status not in TENTATIVE]
        if not recorded and not medications:
            if undecided:
                m, course = undecided[0]
                found.append(_exclusion(rule, DOCUMENTATION_NEEDED, "medication", m.text,
                                        (medication_evidence(x, w) for x, w in undecided),
                                        "steroid-course-unknown", course=course))
            continue
        matched = ", ".join([describe(d) for d in recorded] + [m.text for m in medications])
        evidence = tuple(diagnosis_evidence(d) for d in recorded) + tuple(medication_evidence(m) for m in medications)
        if may_qualify:
            code = "also-recorded" if rule.id in NOT_A_CAUSE else "beside-qualifying"
            found.append(_exclusion(rule, DOCUMENTATION_NEEDED, "recorded", matched, evidence, code))
        else:
            basis = "recorded" if reading.specific_reasons else "sole-diagnosis"
            found.append(_exclusion(rule, DOES_NOT_MEET, basis, matched, evidence, "no-qualifying-diagnosis"))
    return tuple(found)
