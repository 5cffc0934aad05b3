"""The label's findings in words: contraindications, warnings, interactions, monitoring (service.policy.label
decides; `LabelFinding.why` says what it found). Each finding has a message and, but for the monitoring
points, a title of a few words for card summaries. The interaction messages and the monitoring points
are label.yaml's own text; names quoted from the chart are chart-derived (escaped where they enter markdown).
"""
from __future__ import annotations

from typing import Callable

from service.policy.compare import format_against, format_number
from service.policy.decision import LabelFinding, Reason
from service.wording import dose
from service.wording.numbers import age

CONTRAINDICATES = "a confirmed hypersensitivity contraindicates mecasermin"
# The label checks (service.policy.context.LABEL_CHECKS) by name, for "the checks for … are incomplete".
CHECKS = {
    "hypersensitivity": "hypersensitivity",
    "malignancy": "malignancy",
    "closed-epiphyses": "closed epiphyses",
    "advanced-bone-age": "bone age",
    "interactions": "interactions and concurrent growth hormone",
    "patient-age": "age",
}


def _substance(f: Reason) -> str:
    return "mecasermin" if f["substance"] == "mecasermin" else f"{f['name']}, an inactive ingredient of the vial,"


def _allergy_details(f: Reason) -> str:
    details = [f"recorded as '{f['recorded_as']}'" if f.get("recorded_as") else None,
               f"a severe reaction, now {f['now']}" if f.get("now") else None,
               f"on {f['date'].isoformat()}" if f.get("date") else None, f["reference"]]
    return ", ".join(d for d in details if d)


def _when(f: Reason) -> str:
    return f" on {f['date'].isoformat()}" if f.get("date") else ""


def _malignancy(f: Reason) -> str:
    which = "active malignancy" if f["active"] else "history of malignancy"
    shown = f["name"] if f["coded"] else f"'{f['display']}', {f['reference']}"
    return (f"Contraindicated: {which} on file ({shown}); mecasermin is not used with malignant neoplasia or a "
            f"history of it.")


def _possible_malignancy(f: Reason) -> str:
    why = f"is recorded as {f['verification_status']}" if f.get("verification_status") else "is worded as uncertain"
    return (f"Possible malignancy on file — confirm before prescribing: '{f['name']}' ({f['reference']}) {why}. "
            f"Malignant neoplasia, active or past, contraindicates mecasermin.")


def _minimum(f: Reason) -> str:
    return format_number(f["minimum"])


def under_age(f) -> str:
    """The age of a child under the label's minimum: '1 y 11 mo', or 'under 2 years (born 2024-06)'."""
    if f.get("birth_date_text") is None:
        return age(f["oldest"], birth_date=f.get("birth_date"), today=f.get("today"))
    return f"under {format_number(f['minimum'])} years (born {f['birth_date_text']})"


def _under_minimum(f: Reason) -> str:
    return (f"Outside the labelled age (age {under_age(f)}): the label's indication starts at {_minimum(f)} years, "
            f"and the label warns that benzyl alcohol, the vial's preservative, can cause serious and fatal reactions "
            f"(\"gasping syndrome\") in neonates and infants, so use in infants is not recommended.")


def _advanced_bone_age(f: Reason) -> str:
    who = f["sex"] or "sex not recorded; the lower limit is used"
    return (f"Bone age {format_against(f['value'], '>=', f['limit'], 1)} y on {f['date'].isoformat()} ({who}) is at "
            f"or above {format_number(f['limit'])} y: confirm the epiphyses are open before treating.")


MESSAGES: dict[str, Callable[[Reason], str]] = {
    "hypersensitivity": lambda f: f"Contraindicated: recorded hypersensitivity to {_substance(f)} ({_allergy_details(f)}).",
    "possible-hypersensitivity": lambda f: (
        f"Possible hypersensitivity to {_substance(f)} recorded as unconfirmed ({_allergy_details(f)}): confirm "
        f"before prescribing; {CONTRAINDICATES}."),
    "closed-then-open": lambda f: (f"Closed epiphyses were recorded{_when(f)} ('{f['text']}') but a later record says "
                                   f"open; confirm the growth plates are open before treating."),
    "closed-epiphyses": lambda f: f"Contraindicated: closed epiphyses recorded{_when(f)} ('{f['text']}').",
    "epiphyses-unclear": lambda f: (f"A report{_when(f)} does not say clearly whether the growth plates are open "
                                    f"('{f['text']}'); confirm they are open before treating."),
    "malignancy": _malignancy,
    "possible-malignancy": _possible_malignancy,
    "in-situ-neoplasm": lambda f: (f"In-situ neoplasm on file ({f['name']}): review with oncology before starting; "
                                   f"the label contraindicates malignant neoplasia."),
    "no-birth-date": lambda f: f"The patient's age is not on file; the label is for children {_minimum(f)} years and older.",
    "age-uncertain": lambda f: (f"The birth date is recorded only as {f['birth_date_text']}, so the patient may be "
                                f"under {_minimum(f)} years; the label is for children {_minimum(f)} years and older. "
                                f"Record the full birth date."),
    "age-under-minimum": _under_minimum,
    "intravenous-route": lambda f: f"Contraindicated route: {f['route']}. Mecasermin is given subcutaneously only.",
    "route-not-subcutaneous": lambda f: f"Route '{f['route']}' is not subcutaneous; the label allows subcutaneous use only.",
    "advanced-bone-age": _advanced_bone_age,
    "interaction": lambda f: f"{f['message']} ({', '.join(f['medications'])})",
    "checks-incomplete": lambda f: (f"Some records could not be read ({'; '.join(f['gaps'])}): the checks for "
                                    f"{', '.join(CHECKS[c] for c in f['checks'])} are incomplete."),
    "label-limitation": lambda f: (
        f"Outside the label's indication, whatever the plan: {f['matched']} is recorded, and the label does not cover "
        f"secondary IGF-1 deficiency (GH deficiency, malnutrition, hypothyroidism, chronic pharmacologic "
        f"corticosteroids)."),
    "monitoring": lambda f: f["text"],
}

TITLES: dict[str, Callable[[Reason], str | None]] = {
    "hypersensitivity": lambda f: f"Allergy to {f['name']}",
    "possible-hypersensitivity": lambda f: f"Possible allergy to {f['name']}",
    "closed-then-open": lambda f: "Epiphyses possibly closed",
    "closed-epiphyses": lambda f: "Closed epiphyses",
    "epiphyses-unclear": lambda f: "Epiphyses possibly closed",
    "malignancy": lambda f: "Active malignancy" if f["active"] else "History of malignancy",
    "possible-malignancy": lambda f: "Possible malignancy",
    "in-situ-neoplasm": lambda f: "In-situ neoplasm",
    "no-birth-date": lambda f: "Age not on file",
    "age-uncertain": lambda f: "Age not certain",
    "age-under-minimum": lambda f: f"Under {_minimum(f)} years old",
    "intravenous-route": lambda f: "Intravenous route",
    "route-not-subcutaneous": lambda f: "Route not subcutaneous",
    "advanced-bone-age": lambda f: "Advanced bone age",
    "interaction": lambda f: f["title"],
    "checks-incomplete": lambda f: "Label checks incomplete",
    "label-limitation": lambda f: "Label: secondary IGF-1 deficiency",
    "monitoring": lambda f: None,
}


def message(finding: LabelFinding) -> str:
    code = finding.why.code
    return MESSAGES[code](finding.why) if code in MESSAGES else dose.finding_message(finding.why)


def title(finding: LabelFinding) -> str | None:
    code = finding.why.code
    return TITLES[code](finding.why) if code in TITLES else dose.FINDING_TITLES[code]

