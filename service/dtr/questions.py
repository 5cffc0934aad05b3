"""The policy file's `questions` as values: which question settles which criterion or exclusion.

The wording, the item types and how an answer enters the record are the policy's (policy.schema.json,
`questions`); this module only says when a question applies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from service.policy.decision import Criterion

CANONICAL_BASE = "https://mecasermin-cds.example/fhir/Questionnaire"


@dataclass(frozen=True)
class Question:
    target: str                       # the criterion or exclusion id it settles
    text: str
    help: str | None
    items: tuple[Mapping[str, Any], ...]
    record: Mapping[str, Any]         # {"observation" | "condition" | "refute": {...}}
    codes: frozenset[str]             # applies_to.codes: ask only when the evidence holds one

    @property
    def link_id(self) -> str:
        return f"q-{self.target}"

    def item(self, item_id: str) -> Mapping[str, Any]:
        return next(i for i in self.items if i["id"] == item_id)

    def applies_to(self, criterion: Criterion) -> bool:
        return not self.codes or any(e.code in self.codes for e in criterion.evidence)


def applied_policy(policies, decision):
    """The rules a decision applied. With dated policy versions (`PolicySet.applied`, i15-versions) that is
    the version in force on the order's date, or None when none is; before them, the policy file's rules."""
    applied = getattr(policies, "applied", None)
    return applied(decision.policy) if applied is not None else policies.get(decision.policy.id)


def policy_questions(policy) -> dict[str, Question]:
    """The questions of the rules applied (none when no policy version was in force)."""
    if policy is None:
        return {}
    return {target: Question(target, q["text"], q.get("help"), tuple(q["items"]), q["record"],
                             frozenset((q.get("applies_to") or {}).get("codes", ())))
            for target, q in policy.questions.items()}


def questionnaire_url(policy_id: str) -> str:
    """The canonical of a policy's adaptive questionnaire: an identifier, the same on every deployment."""
    return f"{CANONICAL_BASE}/{policy_id}"


def policy_of_url(url: str) -> str | None:
    """The policy id a questionnaire canonical names (a `|version` suffix ignored), or None."""
    base, _, policy_id = url.partition("|")[0].rpartition("/")
    return policy_id if base == CANONICAL_BASE and policy_id else None
