"""Decide, then word: `word(decision)` fills every text field of a Decision from its structured fields
(the codes and values service.policy.evaluate decided), once, at the edge — the hook pipeline, the
SMART app, the screen and the command line call `word(evaluate(…))`, and the cards, the app, the letter,
the CLI, the CRD answer and the audit row read the worded decision. Nothing else writes these fields.
"""
from __future__ import annotations

from service.policy.decision import NOT_MET, UNKNOWN, Criterion, Decision, DoseFinding, Exclusion, LabelFinding
from service.record.frozen import replace
from service.wording import criteria, dose, exclusions, findings
from service.wording.evidence import word_evidence
from service.wording.summary import coding_note, ground, summary


def _evidence(evidence) -> tuple:
    return tuple(word_evidence(e) for e in evidence)


def word_criterion(c: Criterion) -> Criterion:
    explanation, needed = criteria.explain(c)
    return replace(c, threshold=criteria.rule(c), explanation=explanation, evidence=_evidence(c.evidence),
                   parts=tuple(word_criterion(p) for p in c.parts),
                   documentation_needed=needed if c.status == UNKNOWN else None,
                   note=criteria.caveat(c) if c.status == NOT_MET else None)


def word_exclusion(x: Exclusion) -> Exclusion:
    return replace(x, explanation=exclusions.explain(x), evidence=_evidence(x.evidence))


def word_finding(f: LabelFinding) -> LabelFinding:
    return replace(f, message=findings.message(f), title=findings.title(f), evidence=_evidence(f.evidence))


def word_dose(d: DoseFinding | None) -> DoseFinding | None:
    if d is None:
        return None
    proposed = replace(d.proposed, rule=dose.proposed_rule(d.proposed, d)) if d.proposed else None
    return replace(d, message=dose.message(d), allowed=dose.allowed(d), limit=dose.crossed_limit(d), proposed=proposed)


def word(decision: Decision) -> Decision:
    """The decision with its words (idempotent: a worded decision is returned as it is)."""
    if decision.summary is not None:
        return decision
    worded = replace(decision, criteria=tuple(word_criterion(c) for c in decision.criteria),
                     exclusions=tuple(word_exclusion(x) for x in decision.exclusions),
                     label_findings=tuple(word_finding(f) for f in decision.label_findings),
                     dose=word_dose(decision.dose))
    return replace(worded, summary=summary(worded), reasons=tuple(ground(worded, g) for g in worded.grounds),
                   coding_note=coding_note(worded))
