"""A policy's exclusions in words (service.policy.exclusions decides; `Exclusion.why` says how it applies),
and the course of a systemic corticosteroid (service.policy.steroids). `Exclusion.matched` names the
chart's diagnoses or medications (chart-derived); the title and kind are the policy file's.
"""
from __future__ import annotations

from typing import Callable

from service.policy.decision import Exclusion, Reason


def lower_first(title: str) -> str:
    """'Secondary IGF-1 deficiency — …' → 'secondary IGF-1 deficiency — …'; acronyms keep their case
    ('AIDS-associated wasting'), and nothing else is lowered."""
    first = title.split(" ", 1)[0]
    letters = [c for c in first if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters[:2]):
        return title
    return title[:1].lower() + title[1:]


def kind_words(kind: str) -> str:
    return kind.replace("-", " ")


def steroid_rule(months: int) -> str:
    return f"systemic, {months} months or more, not hydrocortisone replacement"


# service.policy.steroids: the course of a systemic corticosteroid, as a clause
COURSES: dict[str, Callable[[Reason], str]] = {
    "replacement": lambda r: f"{r['medication']} is read as physiological replacement, not pharmacologic therapy",
    "no-start-date": lambda r: f"the start date of {r['medication']} is not on file",
    "partial-dates": lambda r: (f"{r['medication']} from {r['start'].isoformat()}: its partial dates leave the course "
                                f"either side of {r['months']} months"),
    "chronic-course": lambda r: (f"{r['medication']} from {r['start'].isoformat()} to {r['end'].isoformat()}: "
                                 f"{r['months']} months or more"),
    "short-course": lambda r: f"{r['medication']} from {r['start'].isoformat()} to {r['end'].isoformat()}: a short course",
    "chronic-ongoing": lambda r: f"{r['medication']} taken since {r['start'].isoformat()}: {r['months']} months or more",
    "recent-start": lambda r: (f"{r['medication']} started {r['start'].isoformat()}, less than {r['months']} months "
                               f"ago, with no planned end on file"),
}


def course(why: Reason) -> str:
    return COURSES[why.code](why)


def _steroid_unknown(x: Exclusion) -> str:
    clause = course(x.why["course"])
    return (f"{clause[:1].upper()}{clause[1:]}: the plan will ask whether this is long-term pharmacologic "
            f"corticosteroid therapy ({steroid_rule(x.why['course']['months'])}).")


EXPLAIN: dict[str, Callable[[Exclusion], str]] = {
    "used-together": lambda x: (f"Active {x.matched} ({x.why['reference']}) means mecasermin would be used together "
                                f"with it. If somatropin is being stopped, discontinue that order before signing."),
    "beside-qualifying-order": lambda x: (f"The order gives both a qualifying diagnosis and {x.matched}; the plan will "
                                          f"ask which is treated and why the IGF-1 deficiency is primary."),
    "order-reason": lambda x: f"The order is for {x.matched}, which this policy treats as {kind_words(x.kind)}.",
    "steroid-course-unknown": _steroid_unknown,
    "also-recorded": lambda x: (f"{x.matched} is also recorded; the plan will ask how severe primary IGF-1 deficiency "
                                f"was established despite it."),
    "beside-qualifying": lambda x: (f"{x.matched} is recorded beside the IGF-1 deficiency diagnosis; the plan will ask "
                                    f"why the deficiency is primary rather than caused by it."),
    "no-qualifying-diagnosis": lambda x: (f"{x.matched} is on file and no qualifying diagnosis is recorded; this policy "
                                          f"treats {lower_first(x.title)} as {kind_words(x.kind)}."),
}


def explain(x: Exclusion) -> str:
    return EXPLAIN[x.why.code](x)
