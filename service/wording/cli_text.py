"""A Decision as a plain-text checklist, for the command line."""
from __future__ import annotations

from service.policy.compare import format_number
from service.policy.decision import Decision, Evidence
from service.wording.decision import kind_words, verdict
from service.wording.evidence import evidence_text
from service.wording.policy import version_words

MARKS = {"met": "[x]", "not_met": "[ ]", "unknown": "[?]"}
DETERMINATIONS = {"meets-criteria": "MEETS CRITERIA", "does-not-meet": "DOES NOT MEET",
                  "documentation-needed": "DOCUMENTATION NEEDED"}


def _evidence(e: Evidence) -> str:
    return evidence_text(e, reference=True)


def render_text(decision: Decision) -> str:
    d = decision
    lines = [
        f"Policy: {d.policy.title} ({d.policy.id}){'' if d.policy.verified else ' — CRITERIA UNVERIFIED'}",
        f"  chosen: {d.policy_choice.reason} — {d.policy_choice.detail}",
        f"  source: {d.policy.source_title} <{d.policy.source_url}>",
        f"  version: {version_words(d.policy)}; file sha256 {d.policy.digest}",
        f"Authorization: {d.authorization}"
        + (f" (mecasermin since {d.treatment_start.isoformat()})" if d.treatment_start else "")
        + (f"; approval up to {d.approval_months} months" if d.approval_months else ""),
        f"Determination: {DETERMINATIONS[d.determination]}" + (f" ({d.sub_reason})" if d.sub_reason else ""),
        f"  {d.summary}",
        f"Verdict: {verdict(d)} ({kind_words(d)})",
    ]
    lines += [f"  - {reason}" for reason in d.reasons]
    if d.technical:
        lines.append(f"  TECHNICAL: records could not be fetched or read: {'; '.join(d.technical_gaps)}")
    lines += ["", "Criteria:"]
    for c in d.criteria:
        basis = " (pre-treatment)" if c.basis == "baseline" else ""
        lines.append(f"  {MARKS[c.status]} {c.title}{basis} — rule: {c.threshold}")
        lines.append(f"      {c.explanation}")
        if c.documentation_needed:
            lines.append(f"      needed: {c.documentation_needed}" + (f" [test: {c.missing_test}]" if c.missing_test else ""))
        lines += [f"      · {_evidence(e)}" for e in c.evidence]
    if d.exclusions:
        lines += ["", "Exclusions:"]
        for x in d.exclusions:
            lines.append(f"  ! {x.title} [{x.kind}; {x.effect}; via {x.basis}]: {x.explanation}")
            lines += [f"      · {_evidence(e)}" for e in x.evidence]
    lines += ["", "Label findings:"]
    for f in d.label_findings:
        lines.append(f"  {f.severity.upper():8} {f.category}: {f.message}")
        lines += [f"      · {_evidence(e)}" for e in f.evidence]
    if d.dose is not None:
        lines += ["", f"Dose ({d.dose.setting}, {d.dose.status}): {d.dose.message}", f"  allowed: {d.dose.allowed}"]
        if d.dose.proposed:
            p = d.dose.proposed
            lines.append(f"  proposed: {format_number(p.dose_mg, 1)} mg = {format_number(p.volume_ml, 3)} mL "
                         f"({p.mg_per_kg_text} mg/kg; {p.rule})")
    coding = [f"ICD-10-CM {d.recommended_icd10}" if d.recommended_icd10 else None,
              f"HCPCS {d.hcpcs}" if d.hcpcs else None]
    lines += ["", "Coding: " + ", ".join(c for c in coding if c)]
    if d.coding_note:
        lines.append(f"  {d.coding_note}")
    if d.missing_tests:
        lines.append("Tests that would settle unknown criteria: " + ", ".join(d.missing_tests))
    lines += [f"Benefit: {note}" for note in d.benefit_notes]
    return "\n".join(lines) + "\n"
