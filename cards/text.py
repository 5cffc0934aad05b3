"""Every sentence a card can say, in one place for clinical review.

Functions here turn a Decision (service.policy.decision) into words; they build no FHIR and
pick no indicator. Numbers are shown with their unit, date and, where relevant, the threshold.
"""
from __future__ import annotations

import re
from datetime import date

from cards.assessment import plan_criteria_unknown
from service.policy.dosing import times_a_day
from service.wording.evidence import evidence_text
from service.wording.numbers import number as fmt_number

LABEL_TITLE = "Increlex (mecasermin) prescribing information"
LABEL_URL = ("https://www.ipsen.com/websites/Ipsen_Online/wp-content/uploads/sites/9/2020/01/02171430/"
             "Increlex_Full_Prescribing_Information.pdf")
SUPPORT_URL = "http://www.ipsencares.com"
SOURCE_LABEL_DRUG = "Increlex (mecasermin) label"

DETERMINATION_WORDS = {
    "meets-criteria": "Meets coverage criteria",
    "documentation-needed": "Documentation needed",
    "does-not-meet": "Does not meet coverage criteria",
}
SUB_REASON_WORDS = {
    "criteria-not-met": "criteria not met",
    "not-medically-necessary": "not medically necessary",
    "investigational": "investigational use",
    "not-covered": "not covered",
}
STATUS_MARK = {"met": "✅ met", "not_met": "❌ not met", "unknown": "❔ unknown"}

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

def fmt_date(value: date | None) -> str:
    return value.isoformat() if value else "no date"


def evidence_line(evidence) -> str:
    return evidence_text(evidence)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def coverage_summary(decision) -> str:
    words = DETERMINATION_WORDS[decision.determination]
    if decision.technical:
        words = "Coverage not determined: record incomplete"
    elif plan_criteria_unknown(decision):
        payer = decision.policy_choice.payer or "the plan"
        words = f"{LABEL_INDICATION_WORDS[decision.determination]}; {payer}'s own criteria not on file"
        return _short(f"Mecasermin: {words}")
    elif decision.sub_reason:
        words = f"{words} ({SUB_REASON_WORDS[decision.sub_reason]})"
    kind = "re-authorization" if decision.authorization == "re-authorization" else "initial"
    return _short(f"Mecasermin {kind}: {words} — {decision.policy.title}")


def _short(summary: str) -> str:
    """CDS Hooks asks for summaries under 140 characters."""
    return summary if len(summary) < 140 else summary[:136].rstrip() + "…"


LABEL_INDICATION_WORDS = {
    "meets-criteria": "within the labelled indication",
    "documentation-needed": "labelled indication not yet documented",
    "does-not-meet": "outside the labelled indication",
}



def coverage_detail(decision, record) -> str:
    lines = [f"**{DETERMINATION_WORDS[decision.determination]}** under *{decision.policy.title}* "
             f"({_policy_choice_words(decision)}).", ""]
    if plan_criteria_unknown(decision):
        lines += [f"No coverage policy is on file for {decision.policy_choice.payer or 'this plan'}: the FDA-labelled "
                  "indication was checked instead. Ask the plan for its own mecasermin criteria.", ""]
    if decision.technical:
        lines += ["The patient's record could not be read in full, so this is provisional:", ""]
        lines += [f"- {gap}" for gap in decision.technical_gaps] + [""]
    if not decision.policy.verified and decision.policy.verification_note:
        lines += [f"> {decision.policy.verification_note}", ""]
    lines += [f"- {reason}" for reason in decision.reasons]
    lines += ["", "| Criterion | Status | Evidence | Threshold |", "|---|---|---|---|"]
    for criterion in decision.criteria:
        evidence = "; ".join(evidence_line(e) for e in criterion.evidence) or criterion.explanation
        if criterion.status == "unknown" and criterion.documentation_needed:
            evidence = f"{evidence} — needed: {criterion.documentation_needed}"
        lines.append(f"| {_cell(criterion.title)} | {STATUS_MARK[criterion.status]} | {_cell(evidence)} | "
                     f"{_cell(criterion.threshold)} |")
    for exclusion in decision.exclusions:
        lines += ["", f"**{exclusion.title}** ({exclusion.kind.replace('-', ' ')}): {exclusion.explanation}"]
    lines += ["", *billing_lines(decision, record)]
    return "\n".join(lines)


def _policy_choice_words(decision) -> str:
    choice = decision.policy_choice
    if choice.reason == "coverage-payer" and choice.payer:
        return f"matched to the patient's coverage with {choice.payer}"
    return choice.detail


def billing_lines(decision, record) -> list[str]:
    kind = "re-authorization" if decision.authorization == "re-authorization" else "initial authorization"
    lines = []
    if decision.approval_months:
        lines.append(f"- Approval length if granted: up to {decision.approval_months} months ({kind}).")
    hcpcs_note = f" {decision.hcpcs_note}" if decision.hcpcs_note else ""
    lines.append(f"- Bill HCPCS {decision.hcpcs or 'J2170'} (mecasermin, 1 mg): one billing unit per mg.{hcpcs_note}")
    coding = coding_help(decision)
    if coding:
        lines.append(f"- {coding}")
    if decision.coding_note:
        lines.append(f"- {decision.coding_note}")
    # The billing line above states the HCPCS unit; a policy note repeating it adds nothing.
    lines += [f"- {note}" for note in decision.benefit_notes
              if (decision.hcpcs or "J2170") not in note and "specialty pharmac" not in note.lower()]
    lines.append("- Dispensed only through the manufacturer's closed network of specialty pharmacies.")
    programme = record.coverage.government_programme if record.coverage else None
    if programme:
        lines.append(f"- Manufacturer support ({SUPPORT_URL}) can verify benefits and help with prior authorization "
                     f"and appeals; copay assistance is not available to {programme} patients.")
    else:
        lines.append(f"- Manufacturer support ({SUPPORT_URL}) offers benefits verification, prior-authorization "
                     "and appeal help, and copay assistance for commercially insured patients.")
    return lines


def coding_help(decision) -> str | None:
    """The diagnosis-code line, only where the record supports the diagnosis (the evaluator leaves
    `recommended_icd10` empty otherwise): stated when the diagnosis criterion is met, conditional when
    it still has to be confirmed."""
    code = decision.recommended_icd10
    if not code:
        return None
    diagnosis = next((c for c in decision.criteria if c.id == "diagnosis"), None)
    if diagnosis is not None and diagnosis.status == "met":
        return f"Diagnosis code: ICD-10-CM {code} (R62.52 and E34.30 are not specific enough)."
    return (f"If the diagnosis is confirmed as severe primary IGF-1 deficiency, code it as ICD-10-CM {code} "
            "(R62.52 and E34.30 are not specific enough).")


def crd_reason_text(decision, key: str) -> str:
    if key == "technical":
        return "technical: " + "; ".join(decision.technical_gaps)
    if key == "plan-criteria-unknown":
        return (f"No coverage policy on file for {decision.policy_choice.payer or 'this plan'}; the FDA-labelled "
                f"indication was checked instead ({DETERMINATION_WORDS[decision.determination].lower()}). "
                "Ask the plan for its mecasermin criteria.")
    return "; ".join(decision.reasons) or DETERMINATION_WORDS[decision.determination]


# A finding's headline ends at a colon, a dash or a full stop followed by a space — not at the
# decimal point of "age 1.6 y".
_HEADLINE_END = re.compile(r":\s|\s—\s|\.\s|\.$")


def headline(message: str) -> str:
    return _HEADLINE_END.split(message, maxsplit=1)[0]


def safety_summary(findings) -> str:
    """'Mecasermin contraindicated: closed epiphyses, history of malignancy' — every critical
    finding by its short title, as many as fit."""
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
        if len(summary) < 140:
            return summary
    return _short(prefix + titles[0])


def _title(finding) -> str:
    title = getattr(finding, "title", None) or headline(finding.message)
    return title[:1].lower() + title[1:] if title[:2] != title[:2].upper() else title


def finding_lines(findings) -> list[str]:
    lines = []
    for finding in findings:
        lines.append(f"- **{finding.message}**")
        lines += [f"  - {evidence_line(e)}" for e in finding.evidence]
    return lines


def safety_detail(findings) -> str:
    critical = [f for f in findings if f.severity == "critical" and f.category != "indication"]
    outside = [f for f in findings if f.severity == "critical" and f.category == "indication"]
    review = [f for f in findings if f.severity != "critical"]
    lines = []
    if critical:
        lines += ["The label lists these as contraindications:", "", *finding_lines(critical)]
    if outside:
        lines += ["", "Outside the labelled use:", "", *finding_lines(outside)]
    if review:
        lines += ["", "Review before prescribing:", "", *finding_lines(review)]
    lines += ["", f"Source: [{LABEL_TITLE}]({LABEL_URL})."]
    return "\n".join(lines).strip()


# The headline names the limit the dose crossed, as the decision states it (dose.limit).
DOSE_SUMMARY = {
    "above-maximum": "Mecasermin dose {mg_per_kg} mg/kg exceeds the {limit}",
    "above-daily-maximum": "Mecasermin {per_day} mg/kg per day exceeds the {limit}",
    "above-start-range": "Mecasermin starting dose {mg_per_kg} mg/kg is above the {limit}",
    "below-range": "Mecasermin dose {mg_per_kg} mg/kg is below the {limit}",
    "unknown": "Mecasermin dose could not be checked against weight",
    "frequency": "Mecasermin should be given twice daily",
}


def dose_summary(dose, frequency_problem: bool) -> str:
    key = dose.status if dose.status in DOSE_SUMMARY and dose.status != "ok" else "frequency"
    return _short(DOSE_SUMMARY[key].format(mg_per_kg=dose.mg_per_kg_text or "?", per_day=dose.mg_per_kg_per_day_text
                                           or "?", limit=dose.limit or "label limit"))


def dose_detail(dose, other_findings) -> str:
    lines = [dose.message, ""]
    if dose.dose_mg is not None:
        ordered = f"{fmt_number(dose.dose_mg)} mg per dose"
        if dose.original_unit and dose.original_unit != "mg" and dose.original_value is not None:
            ordered += f" (ordered as {fmt_number(dose.original_value)} {dose.original_unit})"
        lines.append(f"- Ordered: {ordered}, {dose.frequency_text or 'frequency not stated'}.")
    if dose.weight_kg is not None:
        lines.append(f"- Weight: {fmt_number(dose.weight_kg)} kg on {fmt_date(dose.weight_date)}.")
    if dose.mg_per_kg_text is not None:
        per_day = f"; {dose.mg_per_kg_per_day_text} mg/kg per day" if dose.mg_per_kg_per_day_text else ""
        lines.append(f"- That is {dose.mg_per_kg_text} mg/kg per dose{per_day}.")
    lines.append(f"- Allowed ({dose.setting.replace('-', ' ')}): {dose.allowed}.")
    if dose.proposed:
        p = dose.proposed
        lines.append(f"- Proposed: {fmt_number(p.dose_mg)} mg = {_volume(p)} {times_a_day(p.per_day)} "
                     f"({p.mg_per_kg_text} mg/kg per dose; {p.rule}).")
    lines += [f"- {finding.message}" for finding in other_findings if finding.message != dose.message]
    lines += ["", "Give within 20 minutes of a meal or snack; skip the dose if the meal is skipped.",
              f"Source: [{LABEL_TITLE}]({LABEL_URL})."]
    return "\n".join(lines)


def _volume(proposed) -> str:
    return f"{fmt_number(proposed.volume_ml)} mL of {fmt_number(proposed.concentration_mg_per_ml)} mg/mL"


def proposed_dose_label(proposed) -> str:
    return f"Change to {fmt_number(proposed.dose_mg)} mg ({fmt_number(proposed.volume_ml)} mL) {times_a_day(proposed.per_day)}"


def proposed_dose_text(proposed) -> str:
    return (f"{fmt_number(proposed.dose_mg)} mg ({_volume(proposed)}) subcutaneously "
            f"{times_a_day(proposed.per_day)}, within 20 minutes of a meal or snack")


def monitoring_summary(findings) -> str:
    interactions = sum(1 for f in findings if f.category == "interaction")
    extra = f", {interactions} interaction(s) on file" if interactions else ""
    return f"Mecasermin: what to monitor once treatment starts{extra}"


def monitoring_detail(findings) -> str:
    specific = [f for f in findings if f.category != "monitoring"]
    general = [f for f in findings if f.category == "monitoring"]
    lines = []
    if specific:
        lines += ["For this child:", "", *finding_lines(specific), ""]
    lines += ["Points to monitor on mecasermin:", ""] + [f"- {f.message}" for f in general]
    lines += ["", f"Source: [{LABEL_TITLE}]({LABEL_URL})."]
    return "\n".join(lines)
