"""The adaptive questionnaire, one group per step: `next_question` and `questionnaire_package`.

Pure functions of the chart (the resources `build_record` takes), the draft order, the policies, the
QuestionnaireResponse so far and the day: no I/O. The SMART app calls them directly; the HTTP
operations (service/api/dtr.py) call them with a chart recovered from the CRD call (docs/dtr.md).

Each call works the determination out afresh: the chart, plus the resources the answers attest
(service/dtr/answers.py), through `build_record` and `evaluate` — the same path as a hook call, so an
answer changes the determination exactly as the policy says. Then it adds one group:
1. `on-file` first: every criterion the chart settles, answered and read-only with its evidence, and
   the unknown criteria that no answer could settle (a limit the plan has not published) with why;
2. then one question group for the next open question, in policy order: an unknown criterion (or an
   exclusion that needs documentation) whose policy file has a question that applies to it and that
   was not asked before — but none once the determination is does-not-meet (a criterion not met or an
   exclusion that decides): no answer to an open question could change that;
3. last, `determination`: the result, its summary and reasons; the response is then `completed`.
The response is rebuilt on every call from the service's own definitions; only the answers to
question groups are taken from the client, each checked against its question.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Mapping

from service.dtr.answers import answered_groups, attested_chart
from service.dtr.outcome import DtrError
from service.dtr.questionnaire import (DETERMINATION, ON_FILE, answered_group, determination_group, exclusion_why,
                                       on_file_group, question_group, shell)
from service.dtr.questions import Question, applied_policy, policy_of_url, policy_questions
from service.policy import evaluate
from service.policy.decision import DOCUMENTATION_NEEDED, DOES_NOT_MEET, UNKNOWN
from service.record import build_record
from service.wording import word

QR_PROFILES = ["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse",
               "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"]
QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
INTENDED_USE = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/intendedUse"
CRD_DOC_REASON = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
# The key of the chart the service keeps for this questionnaire (docs/dtr.md); never a patient identifier.
SESSION = "https://mecasermin-cds.example/fhir/StructureDefinition/dtr-session"
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def decide(chart: list, order: Mapping | None, today: date, policies, *, policy_id: str | None = None,
           default_policy: str = "fda-label", rxnorm_codes: Iterable[str] = (), user: str | None = None,
           technical_gaps: Iterable[str] = ()):
    # The same reading as a hook call (service/pipeline.py): the label's concentration and medication
    # categories, and the hook's userId (kept with the chart's snapshot), the prescriber when the order
    # names none.
    record = build_record(chart, order, today, rxnorm_codes=tuple(rxnorm_codes),
                          mg_per_ml=policies.label.dosing.concentration_mg_per_ml,
                          categories=policies.label.medication_categories, user=user)
    return record, word(evaluate(record, policies, today, policy_id=policy_id, default_policy=default_policy,
                                 technical_gaps=tuple(technical_gaps)))


@dataclass(frozen=True)
class Answered:
    """A response read against the chart: the chart's own determination, and the one with its answers
    (the chart plus the resources they attest) — what the next step asks from, and what the letter says."""
    record: object                     # PatientRecord with the answers
    decision: object                   # Decision with the answers (worded)
    attested: frozenset[str]           # references of the resources the answers attest or rule out
    chart_decision: object             # Decision from the chart alone
    policy: object                     # the Policy (its version in force) that applies
    questions: Mapping[str, Question]
    matched: Mapping[str, tuple[str, ...]]   # exclusion id → the recorded diagnoses it matched
    answers: Mapping[str, Mapping]     # question target → {item id: value}, checked
    response_id: str


def answered_decision(resources: Iterable[dict], order: Mapping, policies, qr: Mapping, today: date, *,
                      default_policy: str = "fda-label", rxnorm_codes: Iterable[str] = (), user: str | None = None,
                      technical_gaps: Iterable[str] = ()) -> Answered:
    """The determination `qr`'s answers give, worked out as `next_question` does (one path). Raises
    DtrError (422) for a response this questionnaire cannot have produced."""
    policy_id = _policy_id_of(qr, policies)
    chart = list(resources)
    settings = {"policy_id": policy_id, "default_policy": default_policy, "rxnorm_codes": tuple(rxnorm_codes),
                "user": user, "technical_gaps": tuple(technical_gaps)}
    chart_record, chart_decision = decide(chart, order, today, policies, **settings)
    policy = applied_policy(policies, chart_decision)
    questions = policy_questions(policy)
    _check_groups(qr, questions)
    response_id = qr["id"] if isinstance(qr.get("id"), str) and _ID.match(qr["id"]) else uuid.uuid4().hex
    answers = answered_groups(qr, questions)
    matched = {e.id: tuple(ev.reference for ev in e.evidence if ev.reference.startswith("Condition/"))
               for e in chart_decision.exclusions}
    record, decision, attested = chart_record, chart_decision, frozenset()
    if any(answers.values()):
        subject = order.get("subject") if isinstance(order.get("subject"), dict) else None
        with_answers, attested = attested_chart(chart, questions, answers, today, subject,
                                                f"QuestionnaireResponse/{response_id}", matched)
        record, decision = decide(with_answers, order, today, policies, **settings)
    return Answered(record, decision, attested, chart_decision, policy, questions, matched, answers, response_id)


def questionnaire_package(resources: Iterable[dict], order: Mapping, policies, today: date, *,
                          policy_id: str | None = None, default_policy: str = "fda-label",
                          rxnorm_codes: Iterable[str] = (), adaptive_url: str | None = None,
                          session: str | None = None, user: str | None = None) -> dict:
    """The DTR package Bundle for this order: the adaptive Questionnaire shell of the policy that
    applies (`policy_id` when a questionnaire was asked for, else the one the chart's coverage picks),
    and the QuestionnaireResponse started with its first group."""
    chart = list(resources)
    _, decision = decide(chart, order, today, policies, policy_id=policy_id, default_policy=default_policy,
                         rxnorm_codes=rxnorm_codes, user=user)
    started = next_question(chart, order, policies, _empty_response(decision.policy, adaptive_url), today,
                            default_policy=default_policy, rxnorm_codes=rxnorm_codes, adaptive_url=adaptive_url,
                            session=session, user=user)
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": shell(decision.policy, adaptive_url)}, {"resource": started}]}


def _empty_response(policy, adaptive_url: str | None) -> dict:
    questionnaire = shell(policy, adaptive_url)
    return {"resourceType": "QuestionnaireResponse", "contained": [questionnaire],
            "questionnaire": f"#{questionnaire['id']}", "status": "in-progress"}


def next_question(resources: Iterable[dict], order: Mapping, policies, qr: Mapping, today: date, *,
                  default_policy: str = "fda-label", rxnorm_codes: Iterable[str] = (),
                  adaptive_url: str | None = None, session: str | None = None, user: str | None = None) -> dict:
    """`qr` grown by one group (module docstring). Raises DtrError (422) for a response this
    questionnaire cannot have produced: another questionnaire, unknown groups, answers that do not fit."""
    read = answered_decision(resources, order, policies, qr, today, default_policy=default_policy,
                             rxnorm_codes=rxnorm_codes, user=user)
    chart_decision, decision, questions, matched, policy = (read.chart_decision, read.decision, read.questions,
                                                             read.matched, read.policy)
    links = [group["linkId"] for group in qr.get("item") or ()]
    by_link = {q.link_id: q for q in questions.values()}
    asked = [by_link[link] for link in links if link in by_link]
    askable = {q.target for q, _ in _open_questions(chart_decision, questions, matched, set(), policy)}
    pairs = [on_file_group(chart_decision, askable)]
    pairs += [(_asked_definition(q, chart_decision), answered_group(q, read.answers.get(q.target, {})))
              for q in asked]
    status = "in-progress"
    if ON_FILE in links:          # the first step adds the on-file group alone
        pending = [] if decision.determination == DOES_NOT_MEET else \
            _open_questions(decision, questions, matched, {q.link_id for q in asked}, policy)
        if pending:
            pairs.append(question_group(*pending[0]))
        else:
            pairs.append(determination_group(decision))
            status = "completed"
    questionnaire = shell(chart_decision.policy, adaptive_url)
    questionnaire["item"] = [q_item for q_item, _ in pairs]
    return _response(read.response_id, questionnaire, [r_item for _, r_item in pairs], status, qr, order, read.record,
                     today, session)


STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")


def _policy_id_of(qr: Mapping, policies):
    if qr.get("status") not in STATUSES:
        raise DtrError(422, f"QuestionnaireResponse.status must be one of {', '.join(STATUSES)}",
                       "QuestionnaireResponse.status", code="value")
    contained = qr.get("contained")
    if not isinstance(contained, list) or len(contained) != 1 or not isinstance(contained[0], dict) \
            or contained[0].get("resourceType") != "Questionnaire":
        raise DtrError(422, "QuestionnaireResponse.contained must hold exactly one Questionnaire (the adaptive "
                       "questionnaire this response answers)", "QuestionnaireResponse.contained")
    questionnaire = contained[0]
    if qr.get("questionnaire") != f"#{questionnaire.get('id')}":
        raise DtrError(422, "QuestionnaireResponse.questionnaire must reference the contained Questionnaire "
                       "('#' and its id)", "QuestionnaireResponse.questionnaire")
    url = questionnaire.get("url")
    policy_id = policy_of_url(url) if isinstance(url, str) else None
    if policy_id not in policies.ids:
        raise DtrError(422, "The contained Questionnaire is not one of this service's (its url names no loaded "
                       "policy)", "QuestionnaireResponse.contained[0].url", code="not-found")
    return policy_id


def _check_groups(qr: Mapping, questions: Mapping[str, Question]) -> None:
    items = qr.get("item") if qr.get("item") is not None else []
    if not isinstance(items, list):
        raise DtrError(422, "QuestionnaireResponse.item must be a list", "QuestionnaireResponse.item")
    known = {q.link_id for q in questions.values()} | {ON_FILE, DETERMINATION}
    seen = set()
    for index, group in enumerate(items):
        link = group.get("linkId") if isinstance(group, dict) else None
        where = f"QuestionnaireResponse.item[{index}]"
        if not isinstance(link, str) or link not in known:
            raise DtrError(422, f"{where}: linkId {str(link)[:80]!r} is not a group of this questionnaire",
                           f"{where}.linkId")
        if link in seen:
            raise DtrError(422, f"{where}: group {link!r} appears twice", f"{where}.linkId")
        seen.add(link)
        if not isinstance(group.get("item", []), list) or not all(isinstance(i, dict) for i in group.get("item", [])):
            raise DtrError(422, f"{where}.item must be a list of items", f"{where}.item")


def _limit_unknown(policy, criterion_id: str) -> bool:
    """The policy file leaves the criterion's limit null ("verify with the plan"): no answer settles it."""
    spec = next((c for c in policy.initial + policy.reauthorization if c["id"] == criterion_id), {})
    if spec.get("type") == "bone_age":
        return all(spec[sex]["threshold"] is None for sex in ("female", "male"))
    return "threshold" in spec and spec["threshold"] is None


def _open_questions(decision, questions: Mapping[str, Question], matched, asked: set[str],
                    policy) -> list[tuple[Question, str]]:
    """The questions whose answers could still settle something, in policy order (module docstring)."""
    found = []
    for c in decision.criteria:
        question = questions.get(c.id)
        if (c.status == UNKNOWN and question is not None and not _limit_unknown(policy, c.id)
                and question.applies_to(c) and question.link_id not in asked and "refute" not in question.record):
            found.append((question, c.explanation))
    for e in decision.exclusions:
        question = questions.get(e.id)
        if (e.effect == DOCUMENTATION_NEEDED and question is not None and "refute" in question.record
                and matched.get(e.id) and question.link_id not in asked):
            found.append((question, exclusion_why(e)))
    return found


def _asked_definition(question: Question, chart_decision) -> dict:
    why = next((c.explanation for c in chart_decision.criteria if c.id == question.target), None)
    if why is None:
        why = next((exclusion_why(e) for e in chart_decision.exclusions if e.id == question.target), "")
    return question_group(question, why)[0]


def _response(response_id: str, questionnaire: dict, items: list, status: str, qr: Mapping, order: Mapping,
              record, today: date, session: str | None) -> dict:
    extensions = []
    if record.coverage is not None:
        extensions.append({"url": QR_CONTEXT, "valueReference": {"reference": record.coverage.reference}})
    if order.get("id"):
        extensions.append({"url": QR_CONTEXT, "valueReference": {
            "reference": f"{order.get('resourceType', 'MedicationRequest')}/{order['id']}"}})
    extensions.append({"url": INTENDED_USE, "valueCodeableConcept": {"coding": [
        {"system": CRD_DOC_REASON, "code": "withpa", "display": "Include with prior authorization request"}]}})
    if session:
        extensions.append({"url": SESSION, "valueString": session})
    response = {
        "resourceType": "QuestionnaireResponse", "id": response_id, "meta": {"profile": list(QR_PROFILES)},
        "contained": [questionnaire], "extension": extensions, "questionnaire": f"#{questionnaire['id']}",
        "status": status,
        "authored": qr.get("authored") if isinstance(qr.get("authored"), str) and len(qr["authored"]) <= 40
        else today.isoformat(),
        "item": items,
    }
    if record.patient is not None:
        response["subject"] = {"reference": record.patient.reference}
    elif isinstance(order.get("subject"), dict) and isinstance(order["subject"].get("reference"), str):
        response["subject"] = {"reference": order["subject"]["reference"]}
    return response
