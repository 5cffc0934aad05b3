"""The adaptive Questionnaire (DTR adapt / SDC adapt profiles) and the groups it grows by.

Three kinds of group, each added once: `on-file` (the criteria the chart settles, read-only, each with
its evidence), `q-<criterion or exclusion>` (a policy question), and `determination` (the last step).
Every group comes as a pair: its Questionnaire item (appended to the contained Questionnaire) and its
QuestionnaireResponse item (answers prefilled where the service knows them).
"""
from __future__ import annotations

import html
from typing import Any, Mapping

from cards.markdown import plain_text
from service.dtr.answers import ANSWER_SYSTEM, UCUM
from service.dtr.questions import Question, questionnaire_url
from service.policy.decision import Criterion, Decision, Exclusion
from service.wording import dtr as words
from service.wording.evidence import evidence_text

ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
Q_PROFILES = ["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt",
              "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adapt"]
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
STATUS_SYSTEM = "urn:mecasermin-cds:CodeSystem:criterion-status"
DETERMINATION_SYSTEM = "urn:mecasermin-cds:CodeSystem:determination"
ON_FILE, DETERMINATION = "on-file", "determination"


def shell(policy, adaptive_url: str | None = None) -> dict:
    """The Questionnaire with no items yet: what $questionnaire-package hands out, and what the
    QuestionnaireResponse's contained copy grows from. `policy`: the decision's PolicyRef."""
    title = words.questionnaire_title(policy.title)
    version = (policy.effective_date or policy.last_review_date)
    questionnaire = {
        "resourceType": "Questionnaire", "id": policy.id,
        "meta": {"profile": list(Q_PROFILES)},
        "extension": [{"url": ADAPTIVE, **({"valueUrl": adaptive_url} if adaptive_url else {"valueBoolean": True})}],
        "url": questionnaire_url(policy.id), "name": "MecaserminPriorAuthorization", "title": title,
        "status": "active", "subjectType": ["Patient"], "description": words.questionnaire_description(policy.title),
        # DTR's adaptive profile requires a narrative; the title is the policy file's, escaped.
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(title)}</p></div>'},
    }
    if version:
        questionnaire["version"] = version.isoformat()
    return questionnaire


def origin(source: str) -> dict:
    return {"url": ORIGIN, "extension": [{"url": "source", "valueCode": source}]}


def _text(value: Any) -> str:
    return plain_text(value)[:1000]


def _status_item(link_id: str, title: str, options: Mapping[str, str], system: str) -> dict:
    return {"linkId": link_id, "type": "choice", "text": _text(title), "readOnly": True,
            "answerOption": [{"valueCoding": {"system": system, "code": code, "display": display}}
                             for code, display in options.items()]}


def _evidence_children(link_id: str) -> list[dict]:
    return [{"linkId": f"{link_id}.evidence", "type": "string", "text": words.EVIDENCE_TEXT, "readOnly": True,
             "repeats": True},
            {"linkId": f"{link_id}.source", "type": "reference", "text": words.SOURCE_TEXT, "readOnly": True,
             "repeats": True}]


def _evidence_answers(link_id: str, evidence) -> list[dict]:
    if not evidence:
        return []
    return [{"linkId": f"{link_id}.evidence",
             "answer": [{"valueString": _text(evidence_text(e)), "extension": [origin("auto")]} for e in evidence]},
            {"linkId": f"{link_id}.source",
             "answer": [{"valueReference": {"reference": reference}, "extension": [origin("auto")]}
                        for reference in dict.fromkeys(e.reference for e in evidence if e.reference)]}]


def _criterion_pair(criterion: Criterion) -> tuple[dict, dict]:
    link = f"{ON_FILE}.{criterion.id}"
    item = _status_item(link, criterion.title, words.STATUS_WORDS, STATUS_SYSTEM)
    item["item"] = _evidence_children(link)
    answer = {"valueCoding": {"system": STATUS_SYSTEM, "code": criterion.status,
                              "display": words.STATUS_WORDS[criterion.status]},
              "extension": [origin("auto")]}
    children = [c for c in _evidence_answers(link, criterion.evidence) if c["answer"]]
    if criterion.status == "unknown":      # not askable (e.g. the plan's limit is not known): say why
        children.insert(0, {"linkId": f"{link}.evidence",
                            "answer": [{"valueString": _text(criterion.documentation_needed or criterion.explanation),
                                        "extension": [origin("auto")]}]})
        children = _merge(children)
    if children:
        answer["item"] = children
    return item, {"linkId": link, "text": item["text"], "answer": [answer]}


def _merge(children: list[dict]) -> list[dict]:
    merged: dict[str, dict] = {}
    for child in children:
        merged.setdefault(child["linkId"], {"linkId": child["linkId"], "answer": []})["answer"] += child["answer"]
    return list(merged.values())


def on_file_group(decision: Decision, askable: set[str]) -> tuple[dict, dict]:
    """The criteria the chart settles (and those no answer could settle), read-only with their evidence."""
    pairs = [_criterion_pair(c) for c in decision.criteria if c.status != "unknown" or c.id not in askable]
    item = {"linkId": ON_FILE, "type": "group", "text": words.ON_FILE_TITLE, "readOnly": True,
            "item": [{"linkId": f"{ON_FILE}.help", "type": "display", "text": words.ON_FILE_HELP}] + [p[0] for p in pairs]}
    return item, {"linkId": ON_FILE, "text": words.ON_FILE_TITLE, "item": [p[1] for p in pairs]}


def question_group(question: Question, why: str) -> tuple[dict, dict]:
    """A policy question, with what the chart holds now (read-only) so the prescriber sees what is missing."""
    link = question.link_id
    children: list[dict] = []
    if question.help:
        children.append({"linkId": f"{link}.help", "type": "display", "text": _text(question.help)})
    children.append({"linkId": f"{link}.on-file", "type": "display", "text": _text(f"{words.ON_FILE_NOW}: {why}")})
    for spec in question.items:
        children.append(_question_item(link, spec))
    item = {"linkId": link, "type": "group", "text": _text(question.text), "item": children}
    return item, {"linkId": link, "text": item["text"]}


def _question_item(link: str, spec: Mapping) -> dict:
    item = {"linkId": f"{link}.{spec['id']}", "type": spec["type"], "text": _text(spec["text"]),
            "required": bool(spec.get("required"))}
    if spec["type"] == "decimal" and spec.get("unit"):
        unit = spec["unit"]
        item["extension"] = [{"url": UNIT, "valueCoding": {"system": UCUM, "code": unit["code"],
                                                           "display": unit.get("display", unit["code"])}}]
    if spec["type"] == "choice":
        item["answerOption"] = [{"valueCoding": {"system": ANSWER_SYSTEM, "code": o["code"], "display": o["display"]}}
                                for o in spec["options"]]
    if spec["type"] == "string":
        item["maxLength"] = 500
    return item


def answered_group(question: Question, values: Mapping[str, Any]) -> dict:
    """The client's answers to a question group, as checked values with their origin (entered by hand)."""
    children = []
    for spec in question.items:
        if spec["id"] not in values:
            continue
        value = values[spec["id"]]
        if spec["type"] == "decimal":
            answer = {"valueDecimal": value}
        elif spec["type"] == "date":
            answer = {"valueDate": value.isoformat()}
        elif spec["type"] == "boolean":
            answer = {"valueBoolean": value}
        elif spec["type"] == "choice":
            option = next(o for o in spec["options"] if o["code"] == value)
            answer = {"valueCoding": {"system": ANSWER_SYSTEM, "code": value, "display": option["display"]}}
        else:
            answer = {"valueString": value}
        answer["extension"] = [origin("manual")]
        children.append({"linkId": f"{question.link_id}.{spec['id']}", "text": spec["text"], "answer": [answer]})
    item = {"linkId": question.link_id, "text": question.text}
    if children:
        item["item"] = children
    return item


def determination_group(decision: Decision) -> tuple[dict, dict]:
    """The last step: the determination the answers and the chart give, with its summary and reasons."""
    link = DETERMINATION
    result = _status_item(f"{link}.result", words.RESULT_TEXT, words.DETERMINATION_WORDS, DETERMINATION_SYSTEM)
    items = [result,
             {"linkId": f"{link}.summary", "type": "string", "text": words.SUMMARY_TEXT, "readOnly": True},
             {"linkId": f"{link}.reasons", "type": "string", "text": words.REASONS_TEXT, "readOnly": True,
              "repeats": True}]
    answers = [
        {"linkId": f"{link}.result", "answer": [{"valueCoding": {
            "system": DETERMINATION_SYSTEM, "code": decision.determination,
            "display": words.DETERMINATION_WORDS[decision.determination]}, "extension": [origin("auto")]}]},
        {"linkId": f"{link}.summary", "answer": [{"valueString": _text(decision.summary),
                                                  "extension": [origin("auto")]}]},
    ]
    if decision.reasons:
        answers.append({"linkId": f"{link}.reasons", "answer": [{"valueString": _text(r), "extension": [origin("auto")]}
                                                                for r in decision.reasons]})
    item = {"linkId": link, "type": "group", "text": words.DETERMINATION_TITLE, "readOnly": True, "item": items}
    return item, {"linkId": link, "text": words.DETERMINATION_TITLE, "item": answers}


def exclusion_why(exclusion: Exclusion) -> str:
    return f"{words.EXCLUSION_WORDS}: {exclusion.matched}. {exclusion.explanation}"
