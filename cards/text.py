"""Every sentence a card can say, in one place for clinical review (the design: cards/DESIGN.md).

Functions here turn a Decision (service.policy.decision) into words; they build no FHIR and pick no
indicator. Numbers go through service.wording.numbers and evidence through service.wording.evidence,
so a value reads the same on the card, in the SMART app, in the letter and on the command line.
Label facts (source, limits, concentration) come from the decision's `label` (label.yaml), billing
facts from the policy file; none is written here. Chart-derived text (diagnosis names, evidence
displays, finding messages that quote the chart) enters through `evidence_name`/`evidence_text`,
`Exclusion.matched`, `LabelFinding.message` and the payer's name only, and each is escaped for
CommonMark (`md`, cards/markdown.py) where it enters a detail; summaries are plain text (cards/build.py).
"""
from __future__ import annotations

import re
from collections import Counter

from cards.assessment import crd_key, plan_criteria_unknown
from cards.markdown import escape_markdown as md, plain_text
from service.wording.decision import CRITERION_NAMES, EXCLUDED_MARK, STATUS_MARK, contraindicated, kind_words, verdict
from service.wording.dose import times_a_day
from service.wording.evidence import evidence_name, evidence_text, evidence_value, recorded_as
from service.wording.numbers import clinical_notation, day, number
from service.wording.policy import no_version_reason, version_line

fmt_number = number            # the cards' number formatter is the one of every surface
DETAIL_BUDGET = 1000           # characters of one card's detail (cards/DESIGN.md)
ANSWER_BUDGET = 2000           # characters of every card of one answer, summaries and details
SUMMARY_LIMIT = 140            # CDS Hooks: summaries under 140 characters

SUB_REASON_WORDS = {
    "criteria-not-met": "criteria not met",
    "not-medically-necessary": "not medically necessary",
    "investigational": "investigational",
    "not-covered": "not covered",
}
# (code, display) of our coverage-assertion reasons, keyed like cards.coverage_information.CRD_CODES.
CRD_REASONS = {
    "meets-criteria": ("criteria-met", "Coverage criteria met; prior authorization still required"),
    "documentation-needed": ("documentation-needed", "Documentation needed before a determination"),
    "does-not-meet": ("criteria-not-met", "Coverage criteria not met"),
    "technical": ("technical", "Technical problem: the patient's record could not be read in full"),
    "plan-criteria-unknown": ("plan-criteria-unknown", "The plan's own coverage criteria are not on file"),
}

OVERRIDE_REASONS_SAFETY = (
    ("specialist-reviewed", "Reviewed by pediatric endocrinology; benefit outweighs risk"),
    ("record-outdated", "Record is out of date; contraindication not present"),
    ("already-addressed", "Already addressed with the patient and family"),
)
OVERRIDE_REASONS_DOSE = (
    ("titration-plan", "Dose is part of a documented titration plan"),
    ("weight-outdated", "Weight on file is out of date"),
    ("specialist-reviewed", "Reviewed by pediatric endocrinology"),
)
OVERRIDE_REASONS_COVERAGE = (
    ("pa-in-progress", "Prior authorization already in progress"),
    ("documentation-elsewhere", "Documentation is in records outside this EHR"),
    ("patient-self-pay", "Patient or family will pay without coverage"),
)
APP_POINTER = "Billing, specialty pharmacy and manufacturer support: in the review app (link below)."


def fmt_date(value) -> str:
    return day(value)


def evidence_line(evidence) -> str:
    return evidence_text(evidence)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word with an ellipsis (the full text is in the SMART app)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:—- ")
    return cut + "…"


def _short(summary: str) -> str:
    return summary if len(summary) < SUMMARY_LIMIT else clip(summary, SUMMARY_LIMIT - 1)


# ------------------------------------------------------------------------------------- coverage

def coverage_summary(decision) -> str:
    key = crd_key(decision)
    if contraindicated(decision) and key == "does-not-meet":
        return _short(f"{verdict(decision)} — moot while the contraindication stands")
    if contraindicated(decision) and key != "technical":
        pa = "; prior authorization required" if key in ("meets-criteria", "documentation-needed") else ""
        return _short(f"Coverage moot until the contraindication is resolved (mecasermin {kind_words(decision)}{pa})")
    plan = "" if decision.policy.kind == "label" else f"{decision.policy.title.split(' — ')[0]}, "
    return _short(f"{verdict(decision)} ({plan}{kind_words(decision)})")


def _row_value(criterion) -> str:
    """The checklist's value: the judged evidence with its date and provenance, or what is missing."""
    if not criterion.evidence:
        why = clinical_notation(criterion.explanation) or "none on file"
        needed = clinical_notation(criterion.documentation_needed)
        return clip(why, 110) + (f" Needed: {clip(needed, 90)}" if needed and criterion.status == "unknown" else "")
    e = criterion.evidence[0]
    if e.kind in ("diagnosis", "medication"):
        shown = clip(evidence_name(e), 70) + (f" ({e.code})" if e.code and e.code not in evidence_name(e) else "")
    else:
        shown = evidence_value(e) or clip(evidence_name(e), 70)
        if e.note and "baseline" in e.note and criterion.type == "gh_peak":
            shown = f"baseline (unstimulated) only: {shown}"
    recorded = recorded_as(e)
    if recorded:
        shown += f" ({recorded})"
    if e.date:
        shown += f" on {e.date.isoformat()}"
    if e.note:
        shown += f" — {clip(clinical_notation(e.note), 170)}"
    if criterion.status == "not_met" and criterion.type != "diagnosis":
        shown += f"; limit {clip(clinical_notation(criterion.threshold.split(' (')[0]), 40)}"
        if criterion.note:
            shown += f". {clip(clinical_notation(criterion.note), 120)}"
    if criterion.reason == "limit-unknown":
        shown += ". The plan's limit is not known: ask the plan"
    elif criterion.status == "unknown" and criterion.documentation_needed:
        shown += f". Needed: {clip(clinical_notation(criterion.documentation_needed), 90)}"
    return shown


def checklist(decision) -> list[str]:
    lines = []
    for c in decision.criteria:
        name = CRITERION_NAMES.get(c.type, c.title) + (" (pre-treatment)" if c.basis == "baseline" else "")
        lines.append(f"- {STATUS_MARK[c.status]} {name}: {md(_row_value(c))}")
    for x in decision.exclusions:
        effect = "not covered" if x.effect == "does-not-meet" else "the plan will ask"
        matched = "" if x.matched.lower() in x.title.lower() else f" ({md(clip(x.matched, 60))})"
        lines.append(f"- {EXCLUDED_MARK} {md(x.title)}: {SUB_REASON_WORDS.get(x.kind, x.kind)} — {effect}{matched}")
    return lines


def coding_help(decision) -> str | None:
    """The diagnosis code, only where the record supports the diagnosis (the evaluator leaves
    `recommended_icd10` empty otherwise, e.g. on an idiopathic short stature chart)."""
    code = decision.recommended_icd10
    if not code or (decision.coding_note and code in decision.coding_note):
        return None            # the coding note already says which code to use
    diagnosis = next((c for c in decision.criteria if c.type == "diagnosis"), None)
    if diagnosis is not None and diagnosis.status == "met":
        return f"Diagnosis code: ICD-10-CM {code}."
    return f"If severe primary IGF-1 deficiency is confirmed, code ICD-10-CM {code}."


def coverage_detail(decision) -> str:
    kind = kind_words(decision)
    months = f" · approval up to {decision.approval_months} months" if decision.approval_months else ""
    lines = [f"**{decision.policy.title}** · {kind}{months}", md(version_line(decision.policy)), ""]
    if contraindicated(decision):
        lines += ["Resolve the contraindication (red card) first.", ""]
    if plan_criteria_unknown(decision):
        lines += [f"No policy is on file for {md(decision.policy_choice.payer or 'this plan')}: checked against the FDA "
                  "label instead. Ask the plan for its mecasermin criteria.", ""]
    if decision.policy.version is None:
        lines += [md(clip(no_version_reason(decision.policy), 300)), ""]
    if decision.technical:
        lines += [md(clip("Provisional — could not be read: " + "; ".join(decision.technical_gaps), 200)), ""]
    if not decision.policy.verified:
        note = decision.policy.verification_note or "verify them with the plan."
        lines += [clip(note if note.lower().startswith("criteria unverified") else f"Criteria unverified: {note}", 220),
                  ""]
    lines += checklist(decision)
    extra = [line for line in (coding_help(decision), decision.coding_note) if line]
    if extra:
        lines += [""] + [clip(line, 200) for line in extra]
    lines += ["", APP_POINTER]
    return _fit("\n".join(lines))


def _fit(detail: str) -> str:
    """A detail within its budget: rows were clipped already; a chart with very many findings is cut
    at a line, pointing to the app."""
    if len(detail) <= DETAIL_BUDGET:
        return detail
    tail = "\n…more in the review app."
    kept = detail[: DETAIL_BUDGET - len(tail)].rsplit("\n", 1)[0]
    return kept + tail


def crd_reason_text(decision, key: str) -> str:
    if key == "technical":
        return plain_text(clip("Technical: " + "; ".join(decision.technical_gaps), 300))
    return plain_text(verdict(decision))


# --------------------------------------------------------------------------------------- safety

# A finding's headline ends at a colon, a dash or a full stop followed by a space — not at the
# decimal point of "age 1.6 y".
_HEADLINE_END = re.compile(r":\s|\s—\s|\.\s|\.$")


def headline(message: str) -> str:
    return _HEADLINE_END.split(message, maxsplit=1)[0]


def safety_summary(findings) -> str:
    """'Mecasermin contraindicated: closed epiphyses, history of malignancy — remove the order'."""
    critical = [f for f in findings if f.severity == "critical"]
    if not critical:
        return _short(f"Mecasermin: {len(findings)} safety point(s) to review before prescribing")
    titles = [_title(f) for f in critical]
    # Age under 2 is outside the labelled indication, which the label does not call a contraindication.
    prefix = ("Mecasermin contraindicated: " if any(f.category == "contraindication" for f in critical)
              else "Mecasermin outside the label: ")
    for shown in range(len(titles), 0, -1):
        rest = len(titles) - shown
        summary = prefix + ", ".join(titles[:shown]) + (f" (+{rest} more)" if rest else "")
        if len(summary) < SUMMARY_LIMIT:
            return summary
    return _short(prefix + titles[0])


def _title(finding) -> str:
    title = getattr(finding, "title", None) or headline(finding.message)
    return title[:1].lower() + title[1:] if title[:2] != title[:2].upper() else title


MAX_EVIDENCE = 3


def finding_lines(findings) -> list[str]:
    lines = []
    for finding in findings:
        lines.append(f"- **{md(clip(clinical_notation(finding.message), 240))}**")
        # Two records that read the same (a bone-age observation and its report) are one line, counted.
        said = Counter(clip(clinical_notation(evidence_line(e)), 120) for e in finding.evidence)
        shown = list(said.items())[:MAX_EVIDENCE]
        lines += [f"  - {md(text)}" + (f" ({count} records)" if count > 1 else "") for text, count in shown]
        if len(said) > MAX_EVIDENCE:
            lines.append(f"  - and {sum(list(said.values())[MAX_EVIDENCE:])} more in the review app")
    return lines


def safety_detail(findings) -> str:
    critical = [f for f in findings if f.severity == "critical" and f.category != "indication"]
    outside = [f for f in findings if f.severity == "critical" and f.category == "indication"]
    review = [f for f in findings if f.severity != "critical"]
    lines = []
    if critical:
        lines += ["The label lists these as contraindications; remove the order or resolve the record first:", "",
                  *finding_lines(critical)]
    if outside:
        lines += ["", "Outside the labelled use:", "", *finding_lines(outside)]
    if review:
        lines += ["", "Review before prescribing:", "", *finding_lines(review)]
    return _fit("\n".join(lines).strip())


# ----------------------------------------------------------------------------------------- dose

# The headline names the limit the dose crossed, as the decision states it (dose.limit).
DOSE_SUMMARY = {
    "above-maximum": "Mecasermin dose {mg_per_kg} mg/kg exceeds the {limit}",
    "above-daily-maximum": "Mecasermin {per_day} mg/kg per day exceeds the {limit}",
    "above-start-range": "Mecasermin starting dose {mg_per_kg} mg/kg is above the {limit}",
    "below-range": "Mecasermin dose {mg_per_kg} mg/kg is below the {limit}",
    "unknown": "Mecasermin dose could not be checked against weight",
    "unknown-unit": "Mecasermin dose could not be checked: not stated in mg or mL",
    "frequency": "Mecasermin should be given twice daily",
}


def dose_summary(dose, frequency_problem: bool) -> str:
    key = dose.status if dose.status in DOSE_SUMMARY and dose.status != "ok" else "frequency"
    if key == "unknown" and dose.dose_mg is None:     # the weight is on file; the order's unit is the problem
        key = "unknown-unit"
    return _short(DOSE_SUMMARY[key].format(mg_per_kg=dose.mg_per_kg_text or "?", per_day=dose.mg_per_kg_per_day_text
                                           or "?", limit=dose.limit or "label limit"))


def dose_detail(dose, other_findings) -> str:
    lines = [md(dose.message), ""]
    if dose.dose_mg is not None:
        ordered = f"{number(dose.dose_mg)} mg per dose"
        if dose.original_unit and dose.original_unit != "mg" and dose.original_value is not None:
            ordered += f" (ordered as {number(dose.original_value)} {md(dose.original_unit)})"
        lines.append(f"- Ordered: {ordered}, {md(dose.frequency_text or 'frequency not stated')}.")
    if dose.weight_kg is not None:
        lines.append(f"- Weight: {number(dose.weight_kg)} kg on {fmt_date(dose.weight_date)}.")
    if dose.mg_per_kg_text is not None:
        per_day = f"; {dose.mg_per_kg_per_day_text} mg/kg per day" if dose.mg_per_kg_per_day_text else ""
        lines.append(f"- That is {dose.mg_per_kg_text} mg/kg per dose{per_day}.")
    lines.append(f"- Allowed ({dose.setting.replace('-', ' ')}): {md(dose.allowed)}.")
    if dose.proposed:
        p = dose.proposed
        lines.append(f"- Proposed: {number(p.dose_mg)} mg = {_volume(p)} {times_a_day(p.per_day)} "
                     f"({p.mg_per_kg_text} mg/kg per dose; {md(p.rule)}).")
    lines += [f"- {md(finding.message)}" for finding in other_findings if finding.message != dose.message]
    lines += ["", "Give within 20 minutes of a meal or snack; skip the dose if the meal is skipped."]
    return _fit("\n".join(lines))


def _volume(proposed) -> str:
    return f"{number(proposed.volume_ml)} mL of {number(proposed.concentration_mg_per_ml)} mg/mL"


def proposed_dose_label(proposed) -> str:
    return f"Change to {number(proposed.dose_mg)} mg ({number(proposed.volume_ml)} mL) {times_a_day(proposed.per_day)}"


def proposed_dose_text(proposed) -> str:
    return (f"{number(proposed.dose_mg)} mg ({_volume(proposed)}) subcutaneously "
            f"{times_a_day(proposed.per_day)}, within 20 minutes of a meal or snack")


# ----------------------------------------------------------------------------------- monitoring

def monitoring_summary(findings) -> str:
    interactions = sum(1 for f in findings if f.category == "interaction")
    extra = f", {interactions} interaction(s) on file" if interactions else ""
    return f"Mecasermin: what to monitor once treatment starts{extra}"


def monitoring_detail(findings) -> str:
    """The child's own interactions in full; the label's monitoring points by name only (each point's
    full text is in the SMART app)."""
    specific = [f for f in findings if f.category != "monitoring"]
    general = [f for f in findings if f.category == "monitoring"]
    lines = []
    if specific:
        lines += ["For this child:", "", *finding_lines(specific), ""]
    if general:
        points = [_point_name(line) for f in general for line in f.message.split("\n") if line.strip()]
        lines += ["Monitor: " + md("; ".join(p for p in points if p)) + "."]
    return _fit("\n".join(lines).strip())


def _point_name(point: str) -> str:
    """'Hypoglycaemia — give within 20 minutes …' → 'hypoglycaemia' (the full point is in the SMART app)."""
    name = point.strip().lstrip("-• ").strip().partition(" — ")[0].rstrip(".")
    return f"{name[:1].lower()}{name[1:]}"
