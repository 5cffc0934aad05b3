"""A measurement criterion in words: its rule, why it came out as it did, and what would settle it.

service.policy.criteria decides and records the outcome as a code with its values (`Criterion.why`,
`Criterion.caveat`, `Criterion.limits`); this module words those codes, the same for the card, the SMART
app, the letter, the command line and the audit row. Each value is shown with `format_against`, which
keeps the shown figure on the side of the limit the decision put it (12.99 is never "13" below 13).
A new criterion type adds its words here: an `EXPLAIN` entry per outcome code it returns, a
`RULE_NAMES`/`WHAT` entry and, if its value reads differently, a `_SHOWN` entry (and its short names
for checklists and headlines in service/wording/decision.py).
"""
from __future__ import annotations

from typing import Callable

from service.policy.compare import centile_from_sds, format_against, format_number
from service.policy.decision import Criterion, Reason
from service.wording import diagnosis, dose
from service.wording.numbers import age, centile, comparator as comparator_text, limit

# The rule's subject, by criterion type ("height SDS ≤ −3.0").
RULE_NAMES = {"height_sds": "height SDS", "igf1_sds": "IGF-1 SDS", "gh_peak": "peak stimulated GH",
              "growth_velocity": "growth velocity", "age": "age",
              "velocity_gain": "growth velocity gain over the pre-treatment velocity", "dose_limit": "dose"}
SCORE_TYPES = ("height_sds", "igf1_sds")
# What a value of this type is called in "No usable … is on file".
WHAT = {"height_sds": "height SDS", "igf1_sds": "IGF-1 with an SDS (reference range or z-score)",
        "bone_age": "bone age", "gh_peak": "GH stimulation test"}
# The result that would settle a criterion with no usable value.
RESULT_NEEDED = {"height_sds": "A height SDS result.",
                 "igf1_sds": "An IGF-1 result with an SDS (reference range or z-score).",
                 "bone_age": "A bone age result."}
VERIFY = "The plan's limit is not known — verify with the plan."


def rule(c: Criterion) -> str:
    """'height SDS ≤ −3.0 (< 0.1st centile)', 'bone age: female < 14 y, male < 16 y', or the policy's own."""
    if c.type == "diagnosis":
        return c.rule_text or c.title
    if c.type == "any_of":
        return c.rule_text or " or ".join(rule(p) for p in c.parts)
    if c.type == "prescriber_specialty":
        wanted = c.why.get("wanted") or {}
        codes = [f"NUCC {x}" for x in wanted.get("nucc", ())] + [f"SNOMED CT {x}" for x in wanted.get("snomed", ())]
        return c.rule_text or (f"prescriber's specialty: {', '.join(codes)}" if codes else c.title)
    if c.rule_text:
        text = c.rule_text
    elif c.type == "bone_age":
        text = "bone age: " + ", ".join(
            f"{x.sex} {'not known' if x.threshold is None else limit(x.op, x.threshold, 'a')}" for x in c.limits)
    elif not c.limits or c.limits[0].threshold is None:
        text = "limit not known — verify with the plan"
    else:
        x = c.limits[0]
        text = f"{RULE_NAMES.get(c.type, c.title)} {limit(x.op, x.threshold, x.unit, score=c.type in SCORE_TYPES)}"
        if c.type == "height_sds":
            text += f" ({centile(centile_from_sds(x.threshold))})"
    return text + (" (pre-treatment value)" if c.basis == "baseline" else "")


# ------------------------------------------------------------------------------ the judged value

def _against(f: Reason, digits: int) -> str:
    return format_against(f["value"], f.get("op"), f.get("limit"), digits)


def _height(f: Reason) -> str:
    measured = f"{format_number(f['measured'], 1)} cm, " if f.get("measured") is not None else ""
    if f.get("range") is not None:
        low, high = f["range"]
        return f"Height {measured}SDS between {format_number(low, 2)} and {format_number(high, 2)} on {f['date'].isoformat()}"
    return (f"Height {measured}SDS {comparator_text(f['comparator'])}{_against(f, 2)} "
            f"({centile(f['centile'])}) on {f['date'].isoformat()}")


def _igf1(f: Reason) -> str:
    measured = f.get("measured")
    value = (f"IGF-1 {comparator_text(measured[0])}{format_number(measured[1], 1)} {measured[2]}, "
             if measured else "IGF-1 ")
    comparator = f["comparator"]
    bound = "at most " if comparator in ("<", "<=") else "at least " if comparator in (">", ">=") else ""
    return f"{value}SDS {bound}{_against(f, 2)} on {f['date'].isoformat()}"


def _bone_age(f: Reason) -> str:
    return f"Bone age {comparator_text(f['comparator'])}{_against(f, 1)} y ({f['sex']}) on {f['date'].isoformat()}"


def interval(facts) -> str:
    """'from 98.5 cm on 2024-01-10 to 103 cm on 2025-01-12', or 'ending 2025-01-12'."""
    end_cm, end_day = facts["end"]
    if facts.get("start") is None:
        return f"ending {end_day.isoformat()}"
    start_cm, start_day = facts["start"]
    return (f"from {format_number(start_cm, 1)} cm on {start_day.isoformat()} to {format_number(end_cm, 1)} cm "
            f"on {end_day.isoformat()}")


def _velocity(f: Reason) -> str:
    return f"Growth velocity {_against(f, 2)} cm/year ({interval(f['interval'])})"


def age_text(facts) -> str:
    """'6.4 years', '1 y 11 mo', or '1.95–2.03 years' for a partial birth date."""
    if facts.get("birth_date_text") is None:
        return age(facts["oldest"], birth_date=facts.get("birth_date"), today=facts.get("today"))
    return f"{format_number(facts['youngest'], 2)}–{format_number(facts['oldest'], 2)} years"


def _age(f: Reason) -> str:
    return f"Age {age_text(f['age'])}"


def _gh(f: Reason) -> str:
    return f"Peak stimulated GH {comparator_text(f['comparator'])}{format_number(f['value'])} ug/L on {f['date'].isoformat()}"


def _span(label: str, f) -> str:
    return f"{format_number(f['rate'], 2)} cm/year {label}, {f['start'][1].isoformat()} to {f['end'][1].isoformat()}"


def _gain(f: Reason) -> str:
    spans = f["spans"]
    return (f"A change of {_against(f, 2)} cm/year over the pre-treatment velocity ({_span('on treatment', spans['on'])}; "
            f"{_span('before', spans['before'])})")


def _dose_limit(f: Reason) -> str:
    return f"{_against(f, 3)} {f['unit']} (the order)"


_SHOWN: dict[str, Callable[[Reason], str]] = {
    "velocity_gain": _gain, "dose_limit": _dose_limit,
    "height_sds": _height, "igf1_sds": _igf1, "bone_age": _bone_age, "growth_velocity": _velocity, "age": _age,
    "gh_peak": _gh,
}


def shown(c: Criterion, f: Reason) -> str:
    """The judged value as the criterion reads it ('Height 100.4 cm, SDS −3.42 (centile 0.03) on …')."""
    show = _SHOWN.get(c.type)
    if show is None:
        return f"{c.title} {_against(f, 2)} on {f['date'].isoformat()}"
    return show(f)


def _limit(f: Reason, unit: str = "") -> str:
    return f"{f['op']} {format_number(f['limit'])}{unit}"


# --------------------------------------------------------------------------------- explanations

def _what(c: Criterion) -> str:
    return WHAT.get(c.type, c.title.lower())


def _no_treatment_start(c, f):
    if c.type == "gh_peak":
        return ("The start date of the earlier mecasermin therapy is not on file, so pre-treatment GH tests "
                "cannot be identified.", "The date mecasermin was started, and the pre-treatment GH stimulation test.")
    return (f"The start date of the earlier mecasermin therapy is not on file, so the pre-treatment {_what(c)} "
            f"cannot be identified.", f"The date mecasermin was started, and the pre-treatment {_what(c)}.")


def _stale_partial(c, f):
    return (f"The latest {_what(c)} is dated only from {f['date'].isoformat()} to {f['date_last'].isoformat()}; "
            f"the stale-data rule needs one from the last {f['max_age_days']} days, which only some of those days are.",
            f"A {_what(c)} from the last {f['max_age_days']} days, with its full date.")


def _stale(c, f):
    return (f"The latest {_what(c)} is from {f['date'].isoformat()} ({f['months']} months ago); the stale-data rule "
            f"needs one from the last {f['max_age_days']} days.", f"A {_what(c)} from the last {f['max_age_days']} days.")


def _peak_not_met(c, f):
    tests = f"{f['tests']} stimulation test{'s' if f['tests'] > 1 else ''}"
    return (f"The peak of {tests} is {comparator_text(f['comparator'])}{format_number(f['value'])} ug/L "
            f"({f['date'].isoformat()}), below the limit ({_limit(f, ' ug/L')}).", None)


NO_VELOCITY = "no two heights at least 6 months apart, the later one the most recent, are on file"
NEEDS_GH_TEST = "A GH stimulation test result (peak GH)."

# code → (criterion, its Reason) → (explanation, what would settle it)
EXPLAIN: dict[str, Callable[[Criterion, Reason], tuple[str, str | None]]] = {
    "met": lambda c, f: (f"{shown(c, f)} meets the limit ({_limit(f)}).", None),
    "not_met": lambda c, f: (f"{shown(c, f)} does not meet the limit ({_limit(f)}).", None),
    "bound": lambda c, f: (f"{shown(c, f)} is a bound that cannot show whether the value is {_limit(f)}.",
                           "A result reported as an exact number."),
    "partial-date-both-sides": lambda c, f: (
        f"{shown(c, f)}: a partial date leaves it on both sides of the limit ({_limit(f)}).",
        "The full date (day, month and year) of birth and of the measurement."),
    "limit-unknown": lambda c, f: (f"{shown(c, f)} is on file. {VERIFY}",
                                   f"Ask the plan for its current limit. {f.get('verify_note') or ''}".strip()),
    "no-treatment-start": _no_treatment_start,
    "no-baseline-value": lambda c, f: (
        f"No {_what(c)} from before mecasermin was started ({f['treatment_start'].isoformat()}) is on file.",
        f"The pre-treatment {_what(c)} (before {f['treatment_start'].isoformat()})."),
    "no-value": lambda c, f: (f"No usable {_what(c)} is on file.", RESULT_NEEDED.get(c.type, f"A {_what(c)} result.")),
    "stale-partial-date": _stale_partial,
    "stale": _stale,
    "peak-met": lambda c, f: (f"Stimulated GH {comparator_text(f['comparator'])}{format_number(f['value'])} ug/L on "
                              f"{f['date'].isoformat()} meets the limit ({_limit(f, ' ug/L')}).", None),
    "peak-not-met": _peak_not_met,
    "peak-bound": lambda c, f: (f"The GH results are bounds that cannot show a peak {_limit(f, ' ug/L')}.",
                                "A stimulation test reported as exact numbers."),
    "baseline-gh-only": lambda c, f: ("Only a baseline (unstimulated) GH is on file; the criterion needs a "
                                      "stimulation test.", NEEDS_GH_TEST),
    "no-stimulation-test": lambda c, f: ("No GH stimulation test is on file.", NEEDS_GH_TEST),
    "sex-unknown": lambda c, f: ("The patient's sex is not recorded as female or male, so the bone-age limit "
                                 "cannot be chosen.", "The patient's sex (birth sex) in the record."),
    "no-velocity": lambda c, f: (f"Growth velocity cannot be computed: {f.get('record_reason') or NO_VELOCITY}.",
                                 "Two height measurements at least 6 months apart, the later one recent."),
    "stale-velocity": lambda c, f: (
        f"The latest height ({f['date'].isoformat()}) is more than {f['max_age_days']} days old, so the velocity "
        f"is not current.", f"A height measurement from the last {f['max_age_days']} days."),
    "no-birth-date": lambda c, f: ("The patient's birth date is not on file.", "The patient's birth date."),
}


# --------------------------------------------------------------- the payer clauses (docs/policies.md)

def _match(f) -> str:
    m = f["match"]
    if "words" in m:
        return f"\u201c{m['words']}\u201d (read from the role's words)"
    return f"{m['code']} {m['display']}" if m.get("display") else m["code"]


def _said(f) -> str:
    return "; ".join(f"{ref}: {text or 'no specialty stated'}" for ref, text in f["said"])


NEEDS_PRESCRIBER = ("The prescriber's specialty: a current PractitionerRole with a NUCC provider-taxonomy specialty, "
                    "or a note of the consultation with the specialist.")
DOSE_UNKNOWN = {
    "no-frequency": lambda r: "the order does not state how often",
    "no-dose-mg": lambda r: f"the dose in mg is not known: {r.get('record_reason') or 'not stated'}",
    "no-vial-volume": lambda r: "the label file gives no vial volume (dosing.vial_ml)",
    "mg-per-kg-unknown": lambda r: f"the dose per kg is not known: {dose.WHY_UNKNOWN[r['why_unknown'].code](r['why_unknown'])}",
}


def _alternatives(c: Criterion, f: Reason) -> str:
    shown = [p for p in c.parts if p.id in f["shown"]]
    return " ".join(f"{p.title}: {explain(p)[0]}" for p in shown)


def _alternatives_needed(c: Criterion) -> str | None:
    needed = [explain(p)[1] for p in c.parts if p.status == "unknown"]
    return " Or: ".join(n for n in needed if n) or None


EXPLAIN.update({
    "no-prior-therapy": lambda c, f: ("No earlier mecasermin therapy is on file, so there is no response to measure.",
                                      "The date mecasermin was started, with heights before and since."),
    "no-velocity-on-treatment": lambda c, f: (
        f"The growth velocity on treatment cannot be computed: {f.get('record_reason') or NO_VELOCITY}.",
        f"Two heights since {f['treatment_start'].isoformat()}, at least 6 months apart."),
    "no-velocity-before-treatment": lambda c, f: (
        f"The growth velocity before treatment cannot be computed: {f.get('record_reason') or NO_VELOCITY}.",
        f"Two heights before {f['treatment_start'].isoformat()}, at least 6 months apart."),
    "no-order": lambda c, f: ("There is no order to read.", "The order."),
    "prescriber-unreadable": lambda c, f: (f"The prescriber's specialty cannot be read: {f['record_reason']}.",
                                           NEEDS_PRESCRIBER),
    "prescriber-met": lambda c, f: (f"The prescriber ({f['prescriber']}) holds {_match(f)} in {f['role']}.", None),
    "prescriber-uncertain": lambda c, f: (f"{f['role']} names {_match(f)}, but its period {f['period']}.",
                                          "The role's full period dates."),
    "prescriber-no-current-role": lambda c, f: (
        f"The prescriber's specialty cannot be read ({f['prescriber']}): " +
        ("only roles that are not current name a listed specialty." if f["matched_not_current"] else
         "no current role or qualification states a specialty this policy can read."), NEEDS_PRESCRIBER),
    "consultation-not-documented": lambda c, f: (
        f"The prescriber ({f['prescriber']}) is not recorded with a listed specialty ({_said(f)}); the policy also "
        f"accepts a prescription in consultation with such a specialist.",
        "A note of the consultation with the specialist the policy names."),
    "prescriber-not-listed": lambda c, f: (
        f"The prescriber ({f['prescriber']}) is not recorded with a listed specialty ({_said(f)}).", None),
    "dose-limit-unknown": lambda c, f: (
        f"The plan's limit ({f['unit']}) cannot be checked: {DOSE_UNKNOWN[f['why'].code](f['why'])}.",
        "The order's dose in mg or mg/kg, how often it is given, and a current weight."),
    "any-of-met": lambda c, f: (f"One of {f['count']} alternatives is met. {_alternatives(c, f)}", None),
    "any-of-not_met": lambda c, f: (f"None of {f['count']} alternatives is met. {_alternatives(c, f)}", None),
    "any-of-unknown": lambda c, f: (f"No alternative is met, and {len(f['shown'])} of {f['count']} cannot be "
                                    f"decided. {_alternatives(c, f)}", _alternatives_needed(c)),
})


def _below_reporting_limit(f: Reason) -> str:
    text = "The result is below the laboratory's reporting limit, so its exact SDS is not known."
    if f.get("range") is not None:
        low, high = f["range"]
        text += (f" For the reference range {format_number(low)}–{format_number(high)} {f['unit']}, "
                 f"{format_number(f['sds'], 1)} SD corresponds to about {format_number(f['value_at_sds'], 1)} "
                 f"{f['unit']}; a result reported to that level would settle it.")
    return text


CAVEATS: dict[str, Callable[[Reason], str]] = {
    "policy-note": lambda f: f["text"],
    "igf1-within-range": lambda f: (f"The IGF-1 is within the laboratory's reference range (SDS "
                                    f"{format_number(f['sds'])} or above): it is not low."),
    "interval-before-treatment": lambda f: (f"The interval begins before mecasermin was started "
                                            f"({f['treatment_start'].isoformat()})."),
    "below-reporting-limit": _below_reporting_limit,
}


def caveat(c: Criterion) -> str | None:
    """The remark that applies (the policy's note on a value that does not meet it, a lab's reporting limit)."""
    return CAVEATS[c.caveat.code](c.caveat) if c.caveat is not None else None


def _explain(c: Criterion, why: Reason) -> tuple[str, str | None]:
    if why.code == "records-unavailable":
        inner, _ = _explain(c, why["on_file"])
        return (f"Some records could not be fetched from the EHR or read ({'; '.join(why['gaps'])}), so this cannot be "
                f"decided. On file: {inner}", "Retry once the EHR's records are available and valid.")
    if why.code == "conditions-unavailable":
        inner, _ = _explain(c, why["on_file"])
        return (f"Conditions could not be fetched from the EHR or read ({'; '.join(why['gaps'])}), so the diagnosis cannot be "
                f"read completely. {inner}", "Retry once the EHR's Condition records are available and valid.")
    return (diagnosis.EXPLAIN if c.type == "diagnosis" else EXPLAIN)[why.code](c, why)


def explain(c: Criterion) -> tuple[str, str | None]:
    """(explanation, what would settle it): the outcome, then its caveat; a gap in the EHR's records
    wraps what is on file."""
    text, needed = _explain(c, c.why)
    extra = caveat(c)
    return (f"{text} {extra}" if extra else text), needed
