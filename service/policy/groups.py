"""OR groups (`type: any_of`): a payer's "either … or …" over criteria of the other types.

The group is met when any of its criteria is met, not met only when every one is not met, and unknown
otherwise; its evidence is theirs, and each sub-result is kept whole in `parts` (service.wording words
each and the group).
"""
from __future__ import annotations

from service.policy.decision import MET, NOT_MET, UNKNOWN, Criterion, Reason
from service.policy.judging import criterion
from service.record.frozen import replace


def any_of(spec, parts: tuple[Criterion, ...]) -> Criterion:
    statuses = [p.status for p in parts]
    status = MET if MET in statuses else NOT_MET if all(s == NOT_MET for s in statuses) else UNKNOWN
    shown = [p for p in parts if p.status == status] if status != NOT_MET else list(parts)
    evidence: list = []
    for e in (e for p in shown for e in p.evidence):
        if e not in evidence:            # an alternative's evidence once, though two may share it
            evidence.append(e)
    unknown = [p for p in parts if p.status == UNKNOWN]
    missing_test = next((p.missing_test for p in unknown if p.missing_test), None)
    group = criterion({**spec, "type": "any_of"}, parts[0].basis if parts else "current", status, evidence,
                      Reason(f"any-of-{status}", {"count": len(parts), "shown": tuple(p.id for p in shown)}),
                      missing_test=missing_test, reason="undecided-alternatives" if status == UNKNOWN else None)
    return replace(group, parts=parts)
