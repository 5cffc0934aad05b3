"""A decision's verdict in words, the same on every surface: the coverage card's headline, the CRD
answer's reason, the SMART app's heading and the command line's verdict line (service.policy decides;
this module only words what it decided)."""
from __future__ import annotations

from cards.assessment import crd_key
from service.wording.policy import no_version_headline

# A criterion by its policy type, in a few words (checklists and headlines).
CRITERION_NAMES = {
    "diagnosis": "Diagnosis", "age": "Age", "height_sds": "Height SDS", "igf1_sds": "IGF-1 SDS",
    "gh_peak": "GH peak (stimulated)", "bone_age": "Bone age", "growth_velocity": "Growth velocity",
}
HEADLINE_NAMES = {
    "diagnosis": "diagnosis", "age": "age", "height_sds": "height", "igf1_sds": "IGF-1",
    "gh_peak": "GH stimulation test", "bone_age": "bone age", "growth_velocity": "growth velocity",
}
KIND_WORDS = {"initial": "new start", "re-authorization": "renewal"}
# Checklist marks: plain symbols every font has (the sandbox's headless Chromium shows emoji as boxes).
STATUS_MARK = {"met": "\u2713", "not_met": "\u2717", "unknown": "?"}
EXCLUDED_MARK = "\u2717 excluded:"


def kind_words(decision) -> str:
    return KIND_WORDS.get(decision.authorization, decision.authorization)


def contraindicated(decision) -> bool:
    """A critical contraindication makes coverage moot until it is resolved (cards/DESIGN.md)."""
    return any(f.severity == "critical" and f.category == "contraindication" for f in decision.label_findings)


def treatment_blocked(decision) -> bool:
    """A critical contraindication or use outside the label (under 2): no "once treatment starts" card."""
    return any(f.severity == "critical" and f.category in ("contraindication", "indication")
               for f in decision.label_findings)


def _names(criteria) -> str:
    names = list(dict.fromkeys(HEADLINE_NAMES.get(c.type, c.title) for c in criteria))
    return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")


def verdict(decision) -> str:
    """The coverage verdict and what to do, in a few words: 'Prior authorization required — bone age
    missing', 'Not covered: idiopathic short stature'. The CRD answer's reason says the same."""
    key = crd_key(decision)
    label_only = decision.policy.kind == "label"
    blocking = [x for x in decision.exclusions if x.effect == "does-not-meet"]
    failed = [c for c in decision.criteria if c.status == "not_met"]
    unknown = [c for c in decision.criteria if c.status == "unknown"]
    if key == "technical":
        return "Coverage not determined — the record could not be read in full"
    if decision.policy.version is None:
        return no_version_headline(decision.policy)
    if key == "plan-criteria-unknown":
        state = "met" if decision.determination == "meets-criteria" else "not yet documented"
        return f"Ask {decision.policy_choice.payer or 'the plan'} for its criteria — labelled indication {state}"
    if key == "does-not-meet":
        prefix = "Outside the labelled indication" if label_only else "Not covered"
        if blocking:
            title = blocking[0].title.split(" (")[0]     # "(outside the indication)" repeats the prefix
            kind = " (investigational)" if blocking[0].kind == "investigational" else ""
            return f"{prefix}: {title[:1].lower()}{title[1:]}{kind}"
        return f"{prefix}: {_names(failed)} not met"
    if label_only:
        return ("Within the labelled indication" if key == "meets-criteria"
                else f"Labelled indication: {_names(unknown) or 'documentation'} needed")
    if key == "meets-criteria":
        return "Prior authorization required — criteria met"
    missing = [c for c in unknown if not c.evidence]
    to_verify = [c for c in unknown if c.evidence and c.reason == "limit-unknown"]
    unclear = [c for c in unknown if c.evidence and c.reason != "limit-unknown"]
    parts = ([f"{_names(missing)} missing"] if missing else []) + \
        ([f"{_names(unclear)} to confirm"] if unclear else []) + \
        ([f"ask the plan its limits for {_names(to_verify)}"] if to_verify else [])
    if not parts:
        parts = ["documentation needed"]
    return "Prior authorization required — " + "; ".join(parts)


