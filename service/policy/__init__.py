"""Coverage and label evaluation: policies as data, three-valued criteria with evidence.

    policies = load_policies(settings.policy_dir, default_policy=settings.default_policy)  # at start-up
    decision = evaluate(record, policies, today)                                            # per request
    worded = service.wording.word(decision)      # decide, then word: the texts, from the codes and values
    worded.to_jsonable()
"""
from service.policy.decision import (Criterion, Decision, DoseFinding, Evidence, Exclusion, LabelFinding, PolicyChoice,
                                     PolicyRef, ProposedDose)
from service.policy.evaluate import evaluate
from service.policy.loader import PolicyError, load_policies
from service.policy.rules import LabelRules, Policy, PolicySet, UnknownPolicy

__all__ = [
    "Criterion", "Decision", "DoseFinding", "Evidence", "Exclusion", "LabelFinding", "LabelRules", "Policy",
    "PolicyChoice", "PolicyError", "PolicyRef", "PolicySet", "ProposedDose", "UnknownPolicy", "evaluate",
    "load_policies",
]
