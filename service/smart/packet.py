"""The prior-authorization packet: sentences for the letter of medical necessity, and the same
letter as a FHIR R4 DocumentReference. Pure: the caller passes the clock reading and the HTML."""
from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any, Mapping

from service.policy.decision import MET, NOT_MET, Criterion, Decision, Evidence
from service.policy.evidence_text import evidence_text as shared_evidence_text
from service.smart.present import letter_words

LOINC = "http://loinc.org"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
LETTER_TITLE = "Letter of medical necessity: mecasermin (Increlex)"


def evidence_text(e: Evidence) -> str:
    """One piece of evidence in words, as the cards and the command line word it."""
    return shared_evidence_text(e, label=True)


def criterion_sentence(c: Criterion) -> str:
    """How the letter states a criterion against the patient's record: dates and clinical wording,
    no FHIR ids (a payer reviewer cannot look them up)."""
    explanation = letter_words(c.explanation.strip())
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


def requester_display(order: Mapping[str, Any] | None) -> str | None:
    requester = (order or {}).get("requester")
    if isinstance(requester, Mapping) and isinstance(requester.get("display"), str):
        return requester["display"]
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
                       identifier: str | None = None) -> dict[str, Any]:
    """The letter as an R4 DocumentReference (status current, docStatus preliminary: a draft to sign)."""
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
    if order_reference:
        resource["context"] = {"related": [{"reference": order_reference, "display": "The mecasermin order"}]}
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


def age_text(birth_date: date | None, today: date) -> str | None:
    if birth_date is None:
        return None
    months = (today.year - birth_date.year) * 12 + today.month - birth_date.month - (today.day < birth_date.day)
    return f"{months // 12} years {months % 12} months"
