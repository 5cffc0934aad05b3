"""Which version of a policy file applied, in words: the coverage card's version line, the SMART app,
the command line, and the reason given when no version is in force on the order's date
(docs/policies.md, "Versions"). service.policy chooses the version; this module only words it."""
from __future__ import annotations

from service.policy.decision import PolicyRef, PolicyVersion

DIGEST_SHOWN = 8    # hex characters of the file's sha256 shown on a card (the audit row keeps all 64)


def short_digest(ref: PolicyRef) -> str:
    return (ref.digest or "")[:DIGEST_SHOWN]


def span_text(version: PolicyVersion) -> str:
    """'2025-09 (from 2025-09-26)', 'pre-2025-09 (to 2025-09-25)', '2024-03 (2024-03-01 to 2025-09-25)'."""
    start, end = version.effective_from, version.effective_to
    if start and end:
        dates = f"{start.isoformat()} to {end.isoformat()}"
    elif start:
        dates = f"from {start.isoformat()}"
    elif end:
        dates = f"to {end.isoformat()}"
    else:
        dates = "undated"
    return f"{version.name} ({dates})" if version.declared else f"one version, {dates}"


def day_text(ref: PolicyRef) -> str:
    """'the order date 2026-03-01', or 'the evaluation day 2026-03-01 (no order date)'."""
    choice = ref.version_choice
    if choice is None:
        return "the evaluation day"
    if choice.basis == "order-date":
        return f"the order date {choice.on.isoformat()}"
    why = (f"the order's date {choice.order_date_text!r} is not a full date" if choice.order_date_text
           else "no order date")
    return f"the evaluation day {choice.on.isoformat()} ({why})"


def version_words(ref: PolicyRef) -> str:
    """Which version applied and on which day: 'Version 2025-09, in force on the order date 2026-03-01'."""
    version = ref.version
    if version is None:
        return f"No policy version in force on {day_text(ref)}"
    if not version.declared:
        if version.effective_from is None:
            return "Undated policy (one version)"
        return f"Policy effective {version.effective_from.isoformat()}, applied on {day_text(ref)}"
    return f"Version {version.name}, in force on {day_text(ref)}"


def version_line(ref: PolicyRef) -> str:
    """The coverage card's line, within its budget: 'Version 2025-09 (order date 2026-03-01) · sha256 1a2b3c4d'."""
    choice, version = ref.version_choice, ref.version
    day = choice.on.isoformat() if choice else "?"
    if choice is None or choice.basis == "order-date":
        when = f"order date {day}"
    elif choice.order_date_text:
        when = f"order date {choice.order_date_text!r} partial; as of {day}"
    else:
        when = f"no order date; as of {day}"
    if version is None:
        which = "No policy version in force"
    elif not version.declared:
        if version.effective_from is None:
            return f"Policy file sha256 {short_digest(ref)}"
        which = f"Policy of {version.effective_from.isoformat()}"
    else:
        which = f"Version {version.name}"
    return f"{which} ({when}) · sha256 {short_digest(ref)}"


def versions_on_file(ref: PolicyRef) -> str:
    choice = ref.version_choice
    return ", ".join(span_text(v) for v in (choice.on_file if choice else ()))


def no_version_reason(ref: PolicyRef) -> str:
    """Why documentation is needed when no version is in force: the policy, the day, the versions on file."""
    return (f"No version of {ref.title} ({ref.id}) is in force on {day_text(ref)}; versions on file: "
            f"{versions_on_file(ref)}. Ask the plan which criteria applied on that day.")


def no_version_summary(ref: PolicyRef, authorization: str) -> str:
    which = "re-authorization" if authorization == "re-authorization" else "initial authorization"
    day = ref.version_choice.on.isoformat() if ref.version_choice else "the evaluation day"
    return f"Documentation needed for {ref.title} ({which}): no policy version in force on {day}."


def no_version_headline(ref: PolicyRef) -> str:
    """The coverage verdict when no version is in force (a few words, within the headline budget)."""
    day = ref.version_choice.on.isoformat() if ref.version_choice else "the order date"
    return f"Ask the plan its criteria — no policy version on file for {day}"
