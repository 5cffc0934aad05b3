"""OR groups (`type: any_of`): a payer's "either … or …" over criteria of the other types.

The group is met when any of its criteria is met, not met only when every one is not met, and unknown
otherwise; its evidence is theirs, and each sub-result is kept whole in `parts` for the wording layer.
"""
from __future__ import annotations

from service.policy.decision import MET, NOT_MET, UNKNOWN, Criterion


def any_of(spec, parts: tuple[Criterion, ...]) -> Criterion:
    statuses = [p.status for p in parts]
    status = MET if MET in statuses else NOT_MET if all(s == NOT_MET for s in statuses) else UNKNOWN
    shown = [p for p in parts if p.status == status] if status != NOT_MET else list(parts)
    evidence = tuple(dict.fromkeys(e for p in shown for e in p.evidence))
    explanation = " ".join(f"{p.title}: {p.explanation}" for p in shown)
    if status == MET:
        explanation = f"One of {len(parts)} alternatives is met. {explanation}"
    elif status == NOT_MET:
        explanation = f"None of {len(parts)} alternatives is met. {explanation}"
    else:
        explanation = f"No alternative is met, and {len(shown)} of {len(parts)} cannot be decided. {explanation}"
    unknown = [p for p in parts if p.status == UNKNOWN]
    documentation = " Or: ".join(p.documentation_needed for p in unknown if p.documentation_needed) or None \
        if status == UNKNOWN else None
    missing_test = next((p.missing_test for p in unknown if p.missing_test), None) if status == UNKNOWN else None
    return Criterion(spec["id"], spec["title"], status, " or ".join(p.threshold for p in parts), evidence,
                     explanation, documentation, missing_test, parts[0].basis if parts else "current",
                     type="any_of", reason=None if status != UNKNOWN else "undecided-alternatives", parts=parts)
