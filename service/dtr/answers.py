"""A QuestionnaireResponse's answers → attested FHIR resources the record reads like the chart's own.

Each answered question group becomes what its policy question's `record` says: an Observation (a
value with its unit and date, and a reference range where asked), a confirmed Condition (a "yes"), or
the recorded diagnosis an exclusion matched marked refuted (an option that rules it out). Every such
resource is derived from the QuestionnaireResponse and says it was attested there. No answer is
judged here: the criteria judge the resources, so an answer moves the determination exactly as the
policy's criterion says.

An unanswered group adds nothing (the criterion stays unknown); a group answered in part, a value of
the wrong type, a date in the future or an option the question does not offer is a 422 naming the item.
"""
from __future__ import annotations

import math
from datetime import date
from typing import Any, Iterable, Mapping

from service.dtr.outcome import DtrError
from service.dtr.questions import Question
from service.record.resources import reference_of

UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ANSWER_SYSTEM = "urn:mecasermin-cds:CodeSystem:dtr-answer"
MAX_STRING = 500
ATTESTED = "Attested by the prescriber in the prior-authorization questionnaire (Da Vinci DTR)."

# A renderer may answer a decimal item that has a unit with a Quantity (in that unit).
_VALUE_KEY = {"decimal": ("valueDecimal", "valueInteger", "valueQuantity"), "date": ("valueDate",), "boolean": ("valueBoolean",),
              "choice": ("valueCoding",), "string": ("valueString",)}


def answered_groups(qr: Mapping, questions: Mapping[str, Question]) -> dict[str, dict[str, Any]]:
    """{question target: {item id: value}} for every question group of the response (values checked;
    a group with no answer at all maps to {})."""
    by_link = {q.link_id: q for q in questions.values()}
    found: dict[str, dict[str, Any]] = {}
    for index, group in enumerate(qr.get("item") or ()):
        question = by_link.get(group.get("linkId"))
        if question is None:
            continue
        where = f"QuestionnaireResponse.item[{index}]"
        found[question.target] = _group_values(question, group, where)
    return found


def _group_values(question: Question, group: Mapping, where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    prefix = question.link_id + "."
    for index, item in enumerate(group.get("item") or ()):
        link = item.get("linkId") if isinstance(item, dict) else None
        if not isinstance(link, str) or not link.startswith(prefix):
            raise DtrError(422, f"{where}.item[{index}]: linkId {str(link)[:80]!r} is not an item of {question.link_id}",
                           f"{where}.item[{index}].linkId")
        item_id = link[len(prefix):]
        spec = next((i for i in question.items if i["id"] == item_id), None)
        if spec is None:
            raise DtrError(422, f"{where}.item[{index}]: {question.link_id} has no item {item_id[:80]!r}",
                           f"{where}.item[{index}].linkId")
        answers = item.get("answer") or []
        if not isinstance(answers, list) or len(answers) > 1:
            raise DtrError(422, f"{where}.item[{index}] ({link}): one answer expected", f"{where}.item[{index}].answer")
        if answers:
            values[item_id] = _value(spec, answers[0], f"{where}.item[{index}].answer[0]", link)
    if values:
        missing = [i["id"] for i in question.items if i.get("required") and i["id"] not in values]
        if missing:
            raise DtrError(422, f"{where} ({question.link_id}): {question.link_id}.{missing[0]} is required "
                           "when the question is answered", where, code="required")
    return values


def _value(spec: Mapping, answer: Any, where: str, link: str) -> Any:
    keys = _VALUE_KEY[spec["type"]]
    given = [k for k in answer if k.startswith("value")] if isinstance(answer, dict) else []
    if len(given) != 1 or given[0] not in keys:
        raise DtrError(422, f"{where} ({link}): the answer must be a {keys[0]}", where)
    value = answer[given[0]]
    kind = spec["type"]
    if given[0] == "valueQuantity":
        value = _in_item_unit(value, spec, where, link)
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DtrError(422, f"{where} ({link}): not a finite number", where)
        return value
    if kind == "date":
        try:
            day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise DtrError(422, f"{where} ({link}): a full date YYYY-MM-DD is needed", where)
        return day
    if kind == "boolean":
        if not isinstance(value, bool):
            raise DtrError(422, f"{where} ({link}): not a boolean", where)
        return value
    if kind == "choice":
        code = value.get("code") if isinstance(value, dict) else None
        if code not in {o["code"] for o in spec["options"]}:
            raise DtrError(422, f"{where} ({link}): not one of the question's options", where)
        return code
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise DtrError(422, f"{where} ({link}): text of at most {MAX_STRING} characters expected", where)
    return value


def _in_item_unit(quantity: Any, spec: Mapping, where: str, link: str) -> Any:
    unit = (spec.get("unit") or {}).get("code")
    code = quantity.get("code") if isinstance(quantity, dict) else None
    if not isinstance(quantity, dict) or (code is not None and code != unit) or quantity.get("comparator"):
        raise DtrError(422, f"{where} ({link}): a quantity must be an exact value in {unit or 'the item unit'}", where)
    return quantity.get("value")


def attested_chart(chart: Iterable[dict], questions: Mapping[str, Question], answers: Mapping[str, Mapping],
                   today: date, subject: Mapping | None, qr_reference: str,
                   matched: Mapping[str, tuple[str, ...]]) -> tuple[list[dict], frozenset[str]]:
    """(the chart as the answers leave it: attested resources added, refuted diagnoses replaced; the
    references of those attested and refuted resources). `matched`: for each exclusion, the references
    of the recorded diagnoses it matched."""
    chart = list(chart)
    added: list[dict] = []
    refuted: dict[str, str | None] = {}
    for target, values in answers.items():
        if not values:
            continue
        question = questions[target]
        for kind, spec in question.record.items():
            for item_id in (spec.get("date"),):
                if item_id in values and values[item_id] > today:
                    raise DtrError(422, f"{question.link_id}.{item_id}: the date {values[item_id]} is in the future",
                                   f"QuestionnaireResponse.item.where(linkId='{question.link_id}')")
            if kind == "observation":
                added.append(_observation(target, question, spec, values, subject, qr_reference))
            elif kind == "condition" and values.get(spec["when"]) is True:
                added.append(_condition(target, spec, values, subject, qr_reference))
            elif kind == "refute" and values.get(spec["when"]) == spec["equals"]:
                for reference in matched.get(target, ()):
                    refuted[reference] = values.get(spec.get("note"))
    if refuted:
        chart = [_refute(r, refuted[reference_of(r)], qr_reference) if reference_of(r) in refuted else r
                 for r in chart]
    return chart + added, frozenset(refuted) | {reference_of(r) for r in added}


def _quantity(value: float, unit: Mapping) -> dict:
    return {"value": value, "unit": unit.get("display", unit["code"]), "system": UCUM, "code": unit["code"]}


def _observation(target: str, question: Question, spec: Mapping, values: Mapping, subject, qr_reference: str) -> dict:
    unit = question.item(spec["value"])["unit"]
    resource = {
        "resourceType": "Observation", "id": f"dtr-{target}", "status": "final",
        "code": {"coding": [dict(spec["code"])], "text": spec["code"].get("display", spec["code"]["code"])},
        "effectiveDateTime": values[spec["date"]].isoformat(),
        "valueQuantity": _quantity(values[spec["value"]], unit),
        "derivedFrom": [{"reference": qr_reference}], "note": [{"text": ATTESTED}],
    }
    if subject:
        resource["subject"] = dict(subject)
    if "range" in spec:
        low, high = (values[spec["range"][k]] for k in ("low", "high"))
        resource["referenceRange"] = [{"low": _quantity(low, question.item(spec["range"]["low"])["unit"]),
                                       "high": _quantity(high, question.item(spec["range"]["high"])["unit"])}]
    return resource


def _condition(target: str, spec: Mapping, values: Mapping, subject, qr_reference: str) -> dict:
    resource = {
        "resourceType": "Condition", "id": f"dtr-{target}",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"text": spec["text"]},
        "evidence": [{"detail": [{"reference": qr_reference}]}], "note": [{"text": ATTESTED}],
    }
    if subject:
        resource["subject"] = dict(subject)
    if spec.get("date") in values:
        resource["onsetDateTime"] = values[spec["date"]].isoformat()
    return resource


def _refute(condition: dict, reason: str | None, qr_reference: str) -> dict:
    refuted = dict(condition)
    refuted["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": "refuted"}]}
    notes = [n for n in condition.get("note") or () if isinstance(n, dict)]
    refuted["note"] = notes + [{"text": f"{ATTESTED} Ruled out" + (f": {reason}" if reason else ".")}]
    refuted["evidence"] = [{"detail": [{"reference": qr_reference}]}]
    return refuted
