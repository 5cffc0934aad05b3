"""A decision's summary line, its grounds one line each, and the coding note (service.policy.evaluate
decides the determination and its grounds; this words them). The grounds are worded from criteria and
exclusions already worded (service.wording.word words those first)."""
from __future__ import annotations

from service.policy.decision import (CRITERIA_NOT_MET, DOCUMENTATION_NEEDED, DOES_NOT_MEET, MEETS, NOT_MET, UNKNOWN,
                                     Decision, Reason)
from service.wording.policy import no_version_reason, no_version_summary


def _authorization(decision: Decision) -> str:
    return "re-authorization" if decision.authorization == "re-authorization" else "initial authorization"


def ground(decision: Decision, why: Reason) -> str:
    """One line of the grounds: 'Height: Height … does not meet the limit (< -2.25).'"""
    if why.code == "criterion":
        c = decision.criterion(why["id"])
        return f"{c.title}: {c.explanation if c.status == NOT_MET else c.documentation_needed or c.explanation}"
    if why.code == "exclusion":
        x = next(x for x in decision.exclusions if x.id == why["id"])
        return f"{x.title}: {x.explanation}"
    if why.code == "legacy-order-code":
        return f"The order's diagnosis code {why['code']} is not billable: {why['note']}"
    if why.code == "policy-unverified":
        return why.get("note") or f"The criteria of {decision.policy.title} are unverified; verify them with the plan."
    if why.code == "no-version-in-force":
        return no_version_reason(decision.policy)
    if why.code == "records-unavailable":
        return f"Some records could not be fetched from the EHR or read: {'; '.join(why['gaps'])}."
    raise KeyError(why.code)


def summary(decision: Decision) -> str:
    d, which, title = decision, _authorization(decision), decision.policy.title
    if d.determination == MEETS:
        length = f" (approval up to {d.approval_months} months)" if d.approval_months else ""
        return f"Meets the {title} criteria for {which}{length}."
    if d.determination == DOES_NOT_MEET:
        if d.sub_reason == CRITERIA_NOT_MET:
            return f"Does not meet {title} ({which}): {', '.join(c.title for c in d.criteria if c.status == NOT_MET)}."
        first = next(x for x in d.exclusions if x.effect == DOES_NOT_MEET and x.kind == d.sub_reason)
        return f"Does not meet {title}: {d.sub_reason.replace('-', ' ')} — {first.title} ({first.matched})."
    codes = {g.code for g in d.grounds}
    if "no-version-in-force" in codes:
        return no_version_summary(d.policy, d.authorization)
    unknown = [c for c in d.criteria if c.status == UNKNOWN]
    parts = []
    if unknown:
        parts.append(f"{len(unknown)} criterion unknown" if len(unknown) == 1 else f"{len(unknown)} criteria unknown")
    if any(x.effect == DOCUMENTATION_NEEDED for x in d.exclusions):
        parts.append("another cause of short stature is recorded")
    if "legacy-order-code" in codes:
        parts.append("the order's diagnosis code is not billable")
    if "policy-unverified" in codes:
        parts.append("policy criteria unverified")
    if "records-unavailable" in codes:
        parts.append("some records could not be fetched or read")
    return f"Documentation needed for {title} ({which}): {'; '.join(parts)}."


def coding_note(decision: Decision) -> str | None:
    why = decision.coding
    if why is None:
        return None
    if why.code == "legacy-code":
        return why["note"]
    return f"Code the diagnosis as ICD-10-CM {why['code']} on the order and the claim."
