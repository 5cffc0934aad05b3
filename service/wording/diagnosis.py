"""The diagnosis criterion in words (service.policy.diagnoses decides; `Criterion.why` says how).

The names are the chart's codes and text (chart-derived: escaped where they enter markdown); the notes
are the policy file's own.
"""
from __future__ import annotations

from typing import Callable

from service.policy.decision import Criterion, Reason

SEVERE_PRIMARY = "severe primary IGF-1 deficiency"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _conditional(c: Criterion, f: Reason) -> tuple[str, str]:
    condition = f["condition"]
    if condition.code == "antibodies-documented":
        why = f"neutralising anti-GH antibodies are documented, but {_lower_first(condition['rule_note'])}"
        needed = "Ask the plan whether GH gene deletion with neutralising antibodies is covered."
    else:
        why = f"no neutralising anti-GH antibodies are documented. {condition['rule_note']}"
        needed = "Document the neutralising antibodies to GH (result and date)."
    return f"{f['name']} is on file: {why}", needed


def _record_it(f: Reason) -> str:
    return f"Record the diagnosis ({SEVERE_PRIMARY}: {f['recommended']}) on the order."


# code → (criterion, its Reason) → (explanation, what would settle it)
EXPLAIN: dict[str, Callable[[Criterion, Reason], tuple[str, str | None]]] = {
    "order-excluded": lambda c, f: (
        f"The order is for {', '.join(f['names'])}, which is not a qualifying diagnosis under this policy.", None),
    "qualifying": lambda c, f: (f"{f['name']} establishes the indication.", None),
    "unconfirmed": lambda c, f: (f"{f['name']} is recorded as {f['verification_status']}, not confirmed.",
                                 "Confirm the diagnosis (genetic or laboratory evidence) in the record."),
    "legacy-code": lambda c, f: (
        f"Only the legacy code {f['code']} is on file; it does not establish {SEVERE_PRIMARY}. {f['note']}",
        f"Confirm the diagnosis and code it as {f['recommended']} if it is {SEVERE_PRIMARY}."),
    "conditional": _conditional,
    "nonspecific": lambda c, f: (f"{', '.join(f['names'])} does not establish {SEVERE_PRIMARY}.",
                                 f"Document the specific diagnosis and code it as {f['recommended']} where it applies."),
    "unrecognised-order-reason": lambda c, f: (
        f"The order's reason ({', '.join(f['names'])}) is not a recognised qualifying diagnosis, and none is on file.",
        _record_it(f)),
    "no-diagnosis": lambda c, f: ("No qualifying diagnosis is on file or on the order.", _record_it(f)),
}
