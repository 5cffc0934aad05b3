"""Words and numbers as the SMART app's pages show them (Jinja filters and lookup tables)."""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from service.policy.tests_to_order import TESTS
from service.wording.decision import STATUS_MARK
from service.wording.numbers import centile, clinical_notation, number, signed
from service.policy.decision import DOCUMENTATION_NEEDED, DOES_NOT_MEET, MEETS, MET, NOT_MET, UNKNOWN

STATUS_LABELS = {MET: "Met", NOT_MET: "Not met", UNKNOWN: "Unknown"}
STATUS_MARKS = STATUS_MARK      # the cards' marks (service.wording.decision)

DETERMINATION_LABELS = {
    MEETS: "Meets the policy's criteria",
    DOES_NOT_MEET: "Does not meet the policy's criteria",
    DOCUMENTATION_NEEDED: "More documentation needed",
}

# How to obtain what an unknown criterion lacks (Decision.missing_tests), from the one table of tests.
# The limits themselves are the policy's and appear in the checklist next to each criterion.
HOW_TO_GET = {test: t.how_to for test, t in TESTS.items() if t.how_to}

SEVERITY_LABELS = {"critical": "Critical", "warning": "Warning", "info": "Information"}


def fmt_date(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return "date not recorded" if value is None else str(value)


def born_text(patient: Any) -> str:
    """The birth date as recorded: a partial one ("2020-05") is never shown as its first day."""
    return patient.birth_date_text or fmt_date(patient.birth_date)


def fmt_number(value: Any, digits: int = 2) -> str:
    return "\u2014" if value is None else number(value, digits)


def fmt_sds(value: float | None) -> str:
    return "\u2014" if value is None else signed(value)


def fmt_centile(value: float | None) -> str:
    return "\u2014" if value is None else centile(value)


FILTERS = {"fmt_date": fmt_date, "born_text": born_text, "fmt_number": fmt_number, "fmt_sds": fmt_sds, "fmt_centile": fmt_centile}


# ------------------------------------------------------------------ what decides the order

# What to do about each critical label finding (LabelFinding.id, without a substance suffix).
CRITICAL_FIXES = {
    "hypersensitivity": "Do not start mecasermin. If the allergy is recorded in error, refute or remove it in the "
                        "chart, then reopen the app.",
    "malignancy": "Do not start mecasermin: the label contraindicates it with active or past malignant neoplasia. "
                  "If the diagnosis is recorded in error, correct it in the chart, then reopen the app.",
    "closed-epiphyses": "Do not start mecasermin: with closed growth plates it cannot increase height. If the "
                        "record is wrong, record a current radiograph showing open epiphyses.",
    "age-under-minimum": "Do not start mecasermin before the age the label allows.",
    "intravenous-route": "Change the order's route to subcutaneous.",
    "dose-above-daily-maximum": "Change the order to twice daily, each dose within the label's per-dose range.",
}


def critical_findings(decision) -> list[dict[str, str]]:
    """The findings that stop the order as written, each with what to do (dose first: it is fixable now)."""
    found = []
    for finding in decision.findings(severity="critical"):
        key = finding.id.split("-")[0] if finding.id.startswith("hypersensitivity-") else finding.id
        fix = CRITICAL_FIXES.get(key)
        if finding.id == "dose-above-maximum":
            proposed = decision.dose.proposed if decision.dose else None
            fix = (f"Change the dose to {fmt_number(proposed.dose_mg)} mg ({fmt_number(proposed.volume_ml, 3)} mL) "
                   f"per dose, which gives {fmt_number(proposed.mg_per_kg, 3)} mg/kg ({proposed.rule})."
                   if proposed else "Lower the dose to at most the label maximum per kg; record a current weight "
                                    "so the app can propose the dose in mg.")
        found.append({"id": finding.id, "title": finding.title or finding.message, "message": finding.message,
                      "fix": fix or "Resolve this before ordering mecasermin.",
                      "category": finding.category})
    found.sort(key=lambda f: f["category"] != "dose")
    return found


ORDER_SOURCES = {"appContext": "named by the EHR's app context", "fhirContext": "named by the EHR's launch context",
                 "launch URL": "named in the launch URL"}


# ------------------------------------------------------------------ plain clinical wording

_RESOURCE_TYPES = ("Observation", "Condition", "MedicationRequest", "MedicationStatement", "Patient", "Coverage",
                   "AllergyIntolerance", "DiagnosticReport", "Procedure", "Encounter", "Practitioner",
                   "PractitionerRole", "Medication", "DocumentReference", "ServiceRequest", "Organization")
_FHIR_ID_TOKEN = re.compile(r"\(?(?:%s)/[A-Za-z0-9\-.]{1,64}(?:#[A-Za-z]{1,40})?\)?[,.;:]?" % "|".join(_RESOURCE_TYPES))


def without_fhir_ids(text: str | None) -> str:
    """The text with FHIR references ('Observation/abc', '(see Condition/x, Observation/y)') taken out:
    a payer cannot use them. One pass over the words: linear."""
    if not text:
        return ""
    kept: list[str] = []
    for word in text.split(" "):
        if not _FHIR_ID_TOKEN.fullmatch(word):
            kept.append(word)
            continue
        if kept and kept[-1] in ("(see", "see", "("):
            kept.pop()
        end = word.rstrip(")")[-1:] if word.rstrip(")")[-1:] in (".", ";", ":") else word[-1:]
        if end in (".", ";", ":") and kept:
            kept[-1] = kept[-1].rstrip(",") + end
    return " ".join(kept).strip()


def letter_words(text: str | None) -> str:
    """For the payer: no FHIR ids, clinical notation."""
    return clinical_notation(without_fhir_ids(text))


_LOINC_GH_PREFIX = "Somatotropin [Mass/volume] in Serum or Plasma"
_LOINC_NAMES = {"Insulin-like growth factor-I [Mass/volume] in Serum or Plasma": "IGF-1 (serum)",
                "Insulin-like growth factor-I [Z-score] in Serum or Plasma": "IGF-1 SDS (serum)"}


def lab_words(display: str | None) -> str | None:
    """A LOINC long name as a clinician says it. LOINC's generic stimulation codes name the agent
    'XXX' (not stated): that is said in words, never shown raw."""
    if not display:
        return display
    text = display
    for long_name, short in _LOINC_NAMES.items():
        if text.startswith(long_name):
            text = short + text[len(long_name):]
    if text.startswith(_LOINC_GH_PREFIX):
        rest = text[len(_LOINC_GH_PREFIX):]
        timing = rest.lstrip(" -") if rest.startswith((" -", "-")) else ""
        text = "Growth hormone (serum)" + (f", {timing}" if timing else rest)
    if "XXX" in text:
        text = text.replace("post XXX challenge", "after a stimulation test (agent not stated in the result)")
        text = text.replace("XXX", "(agent not stated)")
    return text


def evidence_items(evidence) -> list:
    """The evidence once per fact: a diagnosis recorded with several codings or names in one Condition
    (or one order's reasons) is listed once, under its first wording."""
    seen, items = set(), []
    for e in evidence:
        key = (e.kind, e.reference.split("#")[0]) if e.kind == "diagnosis" else id(e)
        if key in seen:
            continue
        seen.add(key)
        items.append(e)
    return items


# ------------------------------------------------------------------ how each score was derived

def score_derivations(record) -> list[str]:
    """One sentence per usable SDS in the record, saying where it came from (for the letter)."""
    lines = []
    for r in record.igf1:
        if r.usable and r.sds is not None and r.range_low is not None and r.range_high is not None:
            lines.append(f"IGF-1 SDS {fmt_sds(r.sds)} ({fmt_date(r.date)}) computed from the laboratory's reference "
                         f"range {fmt_number(r.range_low)}\u2013{fmt_number(r.range_high)} ng/mL, reading the range as "
                         f"\u00b1 2 SD on a log scale; an estimate, not a value the laboratory reported.")
    for r in record.igf1_scores:
        if r.usable and r.value is not None:
            lines.append(f"IGF-1 SDS {fmt_sds(r.value)} ({fmt_date(r.date)}) as reported by the laboratory.")
    heights = [h for h in record.heights if h.usable and h.sds is not None]
    if heights:
        lines.append("Height SDS and centiles computed from the measured height, age and sex with the CDC 2000 "
                     "stature-for-age reference (LMS method).")
    return lines
