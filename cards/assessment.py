"""Which kind of coverage answer a Decision gives: the key both the card wording and the CRD
coverage-information extension are chosen by."""
from __future__ import annotations


def plan_criteria_unknown(decision) -> bool:
    """A payer is on file, no policy of ours matches it, and the label's indication is (or may be) met:
    nothing can be said of this plan's coverage beyond "it depends on its criteria"."""
    choice = decision.policy_choice
    return (choice.reason == "default" and choice.coverage_reference is not None
            and decision.determination != "does-not-meet")


def crd_key(decision) -> str:
    """meets-criteria | documentation-needed | does-not-meet | technical | plan-criteria-unknown"""
    if decision.technical:
        return "technical"
    if plan_criteria_unknown(decision):
        return "plan-criteria-unknown"
    return decision.determination
