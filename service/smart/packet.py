"""The prior-authorization packet: sentences for the letter of medical necessity, and the same
letter as a FHIR R4 DocumentReference. Pure: the caller passes the clock reading and the HTML."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from service.policy.decision import (DOES_NOT_MEET, MEETS, MET, NOT_MEDICALLY_NECESSARY, NOT_MET, Criterion, Decision,
                                     Evidence)
from service.wording.evidence import evidence_text as shared_evidence_text
from service.record.allergies import SUBSTANCES
from service.smart.present import letter_words

LOINC = "http://loinc.org"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
LETTER_TITLE = "Letter of medical necessity: mecasermin (Increlex)"
QUESTIONNAIRE_TITLE = "Prior-authorization questionnaire (Da Vinci DTR)"


def evidence_text(e: Evidence) -> str:
    """One piece of evidence in words, as the cards and the command line word it."""
    return shared_evidence_text(e, label=True)


ATTESTED_WORDS = "attested by the prescriber in the plan's questionnaire, not read from the chart"


def attested_note(evidence: Iterable[Evidence], attested: frozenset[str]) -> str:
    """' (attested by the prescriber …)' when any of this evidence is a fact the completed DTR
    questionnaire attests (service/dtr), else ''."""
    return f" ({ATTESTED_WORDS})" if any(e.reference in attested for e in evidence) else ""


def criterion_sentence(c: Criterion, attested: frozenset[str] = frozenset()) -> str:
    """How the letter states a criterion against the patient's record: dates and clinical wording,
    no FHIR ids (a payer reviewer cannot look them up); a fact the questionnaire attests says so."""
    explanation = letter_words(c.explanation.strip()) + attested_note(c.evidence, attested)
    if c.status == MET:
        return f"Met: {explanation}"
    if c.status == NOT_MET:
        return f"Not met on the current record: {explanation}"
    return f"Still to be documented before sending: {letter_words(c.documentation_needed or c.explanation)}"


def frequency_words(per_day: int | None, text: str | None) -> str | None:
    words = {1: "once daily", 2: "twice daily", 3: "three times daily"}
    if per_day in words:
        return words[per_day]
    return text


def patient_name(patient: Mapping[str, Any]) -> str:
    names = [n for n in patient.get("name") or () if isinstance(n, Mapping)]
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(n.get("use"), 2))
    for name in names:
        if isinstance(name.get("text"), str) and name["text"].strip():
            return name["text"].strip()
        given = " ".join(g for g in name.get("given") or () if isinstance(g, str))
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        if given or family:
            return f"{given} {family}".strip()
    return "the patient"


def member_id(coverage: Mapping[str, Any] | None) -> str | None:
    if not coverage:
        return None
    if isinstance(coverage.get("subscriberId"), str):
        return coverage["subscriberId"]
    for identifier in coverage.get("identifier") or ():
        if isinstance(identifier, Mapping) and isinstance(identifier.get("value"), str):
            return identifier["value"]
    return None


def supporting_references(decision: Decision) -> list[tuple[str, str]]:
    """(reference, what it is and when) for every record the criteria used, in criterion order, once each."""
    seen: dict[str, str] = {}
    for c in decision.criteria:
        for e in c.evidence:
            if e.reference and e.reference not in seen and "/" in e.reference:
                what = e.display or e.kind.replace("_", " ")
                seen[e.reference] = f"{what}, {e.date.isoformat()}" if e.date else what
    return list(seen.items())


def document_reference(html: str, *, patient_id: str, order_reference: str | None, created: datetime,
                       determination: str, author: tuple[str, str | None] | None = None,
                       identifier: str | None = None, questionnaire: Mapping[str, Any] | None = None,
                       questionnaire_reference: str | None = None) -> dict[str, Any]:
    """The letter as an R4 DocumentReference (status current, docStatus preliminary: a draft to sign).

    Its completed DTR questionnaire is related by reference when it was saved as a QuestionnaireResponse
    of its own (`questionnaire_reference`), else travels as a second attachment (FHIR JSON)."""
    stamp = created.replace(microsecond=0).isoformat()
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [{"system": LOINC, "code": "51852-2", "display": "Letter"}], "text": LETTER_TITLE},
        "category": [{"coding": [{"system": LOINC, "code": "51851-4", "display": "Administrative note"}],
                      "text": "Prior authorization"}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": stamp,
        "description": f"Draft {LETTER_TITLE.lower()} prepared from the EHR record (policy check: {determination}).",
        "content": [{
            "attachment": {
                "contentType": "text/html; charset=utf-8",
                "language": "en-US",
                "data": base64.b64encode(html.encode("utf-8")).decode("ascii"),
                "title": f"{LETTER_TITLE} (draft)",
                "creation": stamp,
            },
        }],
    }
    add_author_and_identifier(resource, author, identifier)
    related = [{"reference": order_reference, "display": "The mecasermin order"}] if order_reference else []
    if questionnaire_reference:
        related.append({"reference": questionnaire_reference, "display": QUESTIONNAIRE_TITLE})
    elif questionnaire is not None:
        resource["content"].append({"attachment": {
            "contentType": "application/fhir+json", "data": base64.b64encode(json.dumps(questionnaire).encode()).decode(),
            "title": f"{QUESTIONNAIRE_TITLE} (QuestionnaireResponse)", "creation": stamp}})
    if related:
        resource["context"] = {"related": related}
    return resource


def add_author_and_identifier(resource: dict[str, Any], author: tuple[str, str | None] | None,
                              identifier: str | None) -> None:
    """author: (the signed-in user's reference, their name); identifier: the write's idempotency key, as
    masterIdentifier, so a conditional create (If-None-Exist) finds a letter already saved."""
    if author:
        reference, name = author
        resource["author"] = [{"reference": reference, **({"display": name} if name else {})}]
    if identifier:
        resource["masterIdentifier"] = {"system": IDENTIFIER_SYSTEM, "value": identifier}


def age_text(patient: Any, today: date) -> str | None:
    """'6 years 5 months'; for a partial birth date, the ages its first and last day give when they differ."""
    if patient is None or patient.birth_date is None:
        return None
    def words(born: date) -> str:
        months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
        return f"{months // 12} years {months % 12} months"
    oldest, youngest = words(patient.birth_date), words(patient.birth_date_last or patient.birth_date)
    return oldest if oldest == youngest else f"{youngest} to {oldest}"


# ------------------------------------------------------------------------------------ the letter's words

@dataclass(frozen=True)
class LetterFraming:
    """What the letter asks and concludes, following the determination (docs/clinical-rules.md,
    "Contraindications and label wording"): it asks for approval only when the record meets the policy,
    or will once the listed items are documented, and no critical label finding stands in the way."""

    asks_approval: bool
    opening: str                 # begins the first sentence: "… treatment with mecasermin for <patient>"
    conclusion: str
    diagnosis_code: str | None   # the header's diagnosis code: only when the diagnosis criterion is met
    safety: str                  # the safety paragraph's first sentence
    to_confirm: tuple[str, ...]  # label warnings that must be settled before sending


def _excipients() -> str:
    names = [spec["name"] for key, spec in SUBSTANCES.items() if key != "mecasermin"]
    return ", ".join(names[:-1]) + " or " + names[-1]


def letter_framing(decision: Decision) -> LetterFraming:
    # Every critical finding stops the order as written — a dose above the maximum too — as the page's
    # NOT TO BE SENT does (present.critical_findings).
    critical = decision.findings(severity="critical")
    to_confirm = tuple(f.message for f in decision.label_findings
                       if f.severity == "warning" and f.category in ("contraindication", "indication"))
    months = f" for {decision.approval_months} months" if decision.approval_months else ""
    asks = decision.determination != DOES_NOT_MEET and not critical
    if critical:
        conclusion = ("The record holds a finding that stops this order as written (a contraindication, a use "
                      "outside the label or a dose above the label maximum, set out above); treatment should not "
                      "start as ordered until it is resolved, and this letter does not ask for approval while it "
                      "stands.")
    elif decision.determination == DOES_NOT_MEET:
        why = ("the plan considers this use not medically necessary"
               if decision.sub_reason == NOT_MEDICALLY_NECESSARY else
               "the request does not meet the plan's criteria")
        conclusion = (f"On the current record {why} ({decision.reasons[0] if decision.reasons else decision.summary}). "
                      "This letter does not ask for approval; if treatment is still considered necessary, the "
                      "clinical reasons for an exception must be set out before it is sent.")
    elif decision.determination == MEETS:
        conclusion = (f"Based on these findings, mecasermin is medically necessary for this patient's growth "
                      f"failure, and I ask that it be approved{months}. I can provide the full records on request.")
    else:
        conclusion = (f"Once the items listed above are documented, I ask that mecasermin be approved{months} for "
                      f"this patient's growth failure. I can provide the full records on request.")
    diagnosis = next((c for c in decision.criteria if c.id == "diagnosis"), None)
    code = decision.recommended_icd10 if diagnosis is not None and diagnosis.status == MET else None
    if to_confirm:
        safety = "No confirmed contraindication to mecasermin is recorded, but these points must be settled first:"
    else:
        safety = (f"No contraindication to mecasermin is recorded (hypersensitivity to mecasermin or to an "
                  f"inactive ingredient of the vial: {_excipients()}; active or previous malignancy; closed "
                  f"epiphyses; intravenous use), and the patient is within the labelled age (2 years and older).")
    opening = ("I am asking the plan to approve" if asks
               else "This letter sets out the record, against the plan's criteria, on")
    return LetterFraming(asks, opening, conclusion, code, safety, to_confirm)
