"""The completed DTR QuestionnaireResponse in the SMART app: checked before it is used, then read back
as the letter's questions and answers (docs/smart-app.md, "DTR questionnaire").

The checks: a valid R4 QuestionnaireResponse (and its contained Questionnaire) by the fhir.resources
models, and consistent with that Questionnaire — every item defined where it stands and in its order,
each answer of the item's type (a choice one of its options), one answer unless the item repeats, no
answer on a group or display item, and the required items of every answered group answered. A group
left unanswered is allowed: the criterion it asked about stays unknown (service/dtr).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from service.fhir.resources import MODEL_FAULTS
from service.wording.numbers import number

QUESTION_PREFIX = "q-"                 # service/dtr's question groups; "on-file" and "determination" are its own
DETERMINATION = "determination"
ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"

# The value[x] an item's type takes (R4 Questionnaire.item.type, questionnaire-answers-1).
VALUE_KEYS = {"boolean": "valueBoolean", "decimal": "valueDecimal", "integer": "valueInteger", "date": "valueDate",
              "dateTime": "valueDateTime", "time": "valueTime", "string": "valueString", "text": "valueString",
              "url": "valueUri", "choice": "valueCoding", "attachment": "valueAttachment",
              "reference": "valueReference", "quantity": "valueQuantity"}


def _model_problem(resource: Mapping[str, Any], what: str) -> list[str]:
    try:
        get_fhir_model_class(str(resource.get("resourceType"))).model_validate(resource)
    except (ValidationError, *MODEL_FAULTS) as exc:
        # A ValueError's text is the model's own word on the value; the other faults' are Python's.
        first = (exc.errors()[0] if isinstance(exc, ValidationError)
                 else {"loc": (), "msg": str(exc) if isinstance(exc, ValueError) else ""})
        where = ".".join(str(part) for part in first.get("loc", ()))
        said = f"{where + ': ' if where else ''}{first.get('msg', '')[:200]}"
        return [f"{what} is not valid FHIR R4" + (f" ({said})" if said else "")]
    return []


def completed_problems(qr: Mapping[str, Any]) -> list[str]:
    """What stops this response going into the letter, as sentences; [] when it can."""
    problems = _model_problem(qr, "The QuestionnaireResponse")
    if qr.get("status") != "completed":
        problems.append(f"its status is {qr.get('status')!r}, not 'completed'")
    contained = qr.get("contained")
    if not isinstance(contained, list) or len(contained) != 1 or not isinstance(contained[0], Mapping) \
            or contained[0].get("resourceType") != "Questionnaire":
        return problems + ["it does not contain exactly one Questionnaire"]
    questionnaire = contained[0]
    problems += _model_problem(questionnaire, "The contained Questionnaire")
    if qr.get("questionnaire") != f"#{questionnaire.get('id')}":
        problems.append("QuestionnaireResponse.questionnaire does not reference the contained Questionnaire")
    if not problems:
        problems += _items_problems(qr.get("item") or [], questionnaire.get("item") or [], "item")
    return problems


def _items_problems(answered: list, defined: list, where: str) -> list[str]:
    """The response's items at one level against the Questionnaire's items at the same level."""
    problems: list[str] = []
    position = {item["linkId"]: index for index, item in enumerate(defined)}
    last = -1
    for index, item in enumerate(answered):
        here = f"{where}[{index}] ({item.get('linkId')})"
        spot = position.get(item.get("linkId"))
        if spot is None:
            problems.append(f"{here}: not an item of the contained Questionnaire at this place")
            continue
        if spot <= last:
            problems.append(f"{here}: out of the Questionnaire's order, or repeated")
        last = spot
        problems += _item_problems(item, defined[spot], here)
    return problems


def _item_problems(item: Mapping, definition: Mapping, here: str) -> list[str]:
    kind = definition.get("type")
    answers = item.get("answer") or []
    if "text" in item and item["text"] != definition.get("text"):
        return [f"{here}: its text differs from the Questionnaire's"]
    if kind in ("group", "display"):
        problems = [f"{here}: a {kind} item has no answers"] if answers else []
        if kind == "group":
            problems += _items_problems(item.get("item") or [], definition.get("item") or [], f"{here}.item")
            if _answered(item):
                problems += [f"{here}: required item {d['linkId']} is not answered" for d in definition.get("item") or ()
                             if d.get("required") and not _answered(_child(item, d["linkId"]))]
        return problems
    problems = []
    if len(answers) > 1 and not definition.get("repeats"):
        problems.append(f"{here}: more than one answer to an item that does not repeat")
    key = VALUE_KEYS.get(kind)
    for position, answer in enumerate(answers):
        if key is None or key not in answer:
            problems.append(f"{here}.answer[{position}]: not a {kind} answer")
        elif kind == "choice" and not _offered(answer[key], definition):
            problems.append(f"{here}.answer[{position}]: not one of the item's options")
        problems += _items_problems(answer.get("item") or [], definition.get("item") or [],
                                    f"{here}.answer[{position}].item")
    return problems


def _child(item: Mapping, link: str) -> Mapping:
    return next((c for c in item.get("item") or () if c.get("linkId") == link), {})


def _answered(item: Mapping) -> bool:
    return bool(item.get("answer")) or any(_answered(c) for c in item.get("item") or ())


def _offered(coding: Mapping, definition: Mapping) -> bool:
    return any((o.get("valueCoding") or {}).get("system") == coding.get("system")
               and (o.get("valueCoding") or {}).get("code") == coding.get("code")
               for o in definition.get("answerOption") or ())


def determination_of(qr: Mapping[str, Any]) -> str | None:
    """The code of the last step's result (service/dtr's `determination` group), or None before it."""
    for group in qr.get("item") or ():
        if group.get("linkId") == DETERMINATION:
            for item in group.get("item") or ():
                for answer in item.get("answer") or ():
                    if item.get("linkId") == f"{DETERMINATION}.result" and "valueCoding" in answer:
                        return answer["valueCoding"].get("code")
    return None


def kept_entry(qr: dict[str, Any], order_reference: str, problems: list[str]) -> dict[str, Any]:
    """What the session keeps of the questionnaire: the response, the order it documents, whether it passed."""
    return {"response": qr, "order": order_reference, "valid": not problems}


def kept_response(session_data: Mapping[str, Any], order_reference: str | None) -> dict[str, Any] | None:
    """The session's completed and checked questionnaire for this order, or None."""
    kept = session_data.get("dtr") or {}
    response = kept.get("response")
    if not response or response.get("status") != "completed" or not kept.get("valid"):
        return None
    return response if order_reference and kept.get("order") == order_reference else None


# ------------------------------------------------------------------------------- the letter's lines

@dataclass(frozen=True)
class AnswerLine:
    depth: int                 # 0 for a question, 1 for what is said under its answer (the evidence)
    question: str
    answers: tuple[str, ...]
    from_chart: bool           # information-origin `auto`: the service read it from the chart


@dataclass(frozen=True)
class AnswerGroup:
    link_id: str
    title: str
    lines: tuple[AnswerLine, ...]


def answer_groups(qr: Mapping[str, Any]) -> list[AnswerGroup]:
    """The chart's and the questions' groups of the response with their questions and answers in words,
    as the letter lists them: references (FHIR ids) left out, a number with the unit the question asks
    for. The determination group is left out: the letter states its result in words of its own."""
    questionnaire = (qr.get("contained") or [{}])[0]
    definitions = {d["linkId"]: d for d in _walk(questionnaire.get("item") or ())}
    groups = []
    for group in qr.get("item") or ():
        if group["linkId"] == DETERMINATION:
            continue
        lines = tuple(_lines(group.get("item") or (), definitions, 0))
        title = definitions.get(group["linkId"], {}).get("text") or group.get("text") or group["linkId"]
        groups.append(AnswerGroup(group["linkId"], title, lines))
    return groups


def _walk(items: Iterable[Mapping]) -> Iterable[Mapping]:
    for item in items:
        yield item
        yield from _walk(item.get("item") or ())


def _lines(items: Iterable[Mapping], definitions: Mapping[str, Mapping], depth: int) -> Iterable[AnswerLine]:
    for item in items:
        definition = definitions.get(item.get("linkId"), {})
        if definition.get("type") in ("display", "reference"):
            continue
        answers = item.get("answer") or []
        words = tuple(w for w in (_answer_words(a, definition) for a in answers) if w)
        if words:
            auto = all(_origin(a) == "auto" for a in answers)
            yield AnswerLine(depth, definition.get("text") or item.get("text") or item["linkId"], words, auto)
        for answer in answers:
            yield from _lines(answer.get("item") or (), definitions, depth + 1)
        yield from _lines(item.get("item") or (), definitions, depth)


def _origin(answer: Mapping) -> str | None:
    for extension in answer.get("extension") or ():
        if extension.get("url") == ORIGIN:
            return next((e.get("valueCode") for e in extension.get("extension") or () if e.get("url") == "source"), None)
    return None


def _answer_words(answer: Mapping, definition: Mapping) -> str | None:
    if "valueCoding" in answer:
        return answer["valueCoding"].get("display") or answer["valueCoding"].get("code")
    if "valueBoolean" in answer:
        return "Yes" if answer["valueBoolean"] else "No"
    if "valueDecimal" in answer or "valueInteger" in answer:
        value = answer.get("valueDecimal", answer.get("valueInteger"))
        unit = next((e.get("valueCoding", {}).get("display") for e in definition.get("extension") or ()
                     if e.get("url") == UNIT), None)
        shown = number(value, 6)         # as entered: the letter restates the answer, it does not round it
        return f"{shown} {unit}" if unit else shown
    for key in ("valueDate", "valueDateTime", "valueString"):
        if key in answer:
            return str(answer[key])
    return None
