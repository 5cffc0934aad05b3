"""Da Vinci DTR payer operations: `Questionnaire/$questionnaire-package` and `Questionnaire/$next-question`.

Who may call: the same clients as the CDS services — a CDS client JWT from an allowlisted issuer,
audience the exact URL called (service/security, docs/dtr.md), since the EHR that received the CRD
answer is the one that asks for its questionnaire. Every failure is an OperationOutcome with its
status (400, 401, 404, 405, 413, 415, 422; service/api/errors.py renders them under `/dtr/`), never
the house's plain JSON error, so FHIR clients can read it.
Logged: counts, the policy and the determination; never a patient identifier or the context.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, json, request

from service.api.errors import FHIR_JSON
from service.api.hooks import _authenticate, _base_url
from service.api.request_body import read_json
from service.dtr import DtrError, next_question, questionnaire_package
from service.dtr.adaptive import SESSION
from service.dtr.outcome import operation_outcome
from service.dtr.parameters import next_question_out, next_question_request, package_out, package_request
from service.dtr.questions import policy_of_url
from service.record.resources import reference_of
from service.trigger import order_is_mecasermin

log = logging.getLogger(__name__)
blueprint = Blueprint("dtr", __name__)


def _deps():
    return current_app.extensions["mecasermin"]


def _fhir(resource: dict, status: int = 200) -> Response:
    return Response(json.dumps(resource), status=status, mimetype=FHIR_JSON)


@blueprint.errorhandler(DtrError)
def _dtr_error(exc: DtrError):
    return _fhir(exc.outcome(), exc.status)


def _body():
    _authenticate()
    settings = _deps().settings
    return read_json(request, settings.max_body_bytes, settings.max_json_depth)


@blueprint.post("/dtr/Questionnaire/$questionnaire-package")
def package():
    body = _body()
    deps = _deps()
    settings = deps.settings
    asked = package_request(body, settings.max_resources)
    requested = _requested_policy(asked.questionnaires, deps.policies)
    chart, order, policy_id, user, session, warnings = _chart(asked, deps)
    policy_id = requested or policy_id
    bundle = questionnaire_package(chart, order, deps.policies, deps.today(), policy_id=policy_id,
                                   default_policy=settings.default_policy, rxnorm_codes=settings.rxnorm_codes,
                                   adaptive_url=_adaptive_url(), session=session, user=user)
    out = package_out([bundle])
    out["parameter"] += [{"name": "operationOutcome", "resource": w} for w in warnings]
    log.info("dtr package", extra={"policy": bundle["entry"][0]["resource"]["id"], "resources": len(chart),
                                   "from_crd": bool(asked.context) and not warnings})
    return _fhir(out)


@blueprint.post("/dtr/Questionnaire/$next-question")
def next_question_operation():
    body = _body()
    deps = _deps()
    settings = deps.settings
    response = next_question_request(body)
    session = next((e.get("valueString") for e in response.get("extension") or ()
                    if isinstance(e, dict) and e.get("url") == SESSION), None)
    snapshot = deps.snapshots.recall(session) if isinstance(session, str) and deps.snapshots else None
    if snapshot is None:
        raise DtrError(422, "The QuestionnaireResponse names no chart this service keeps (its dtr-session extension "
                       "is missing, unknown or expired): start again with $questionnaire-package",
                       "QuestionnaireResponse.extension", code="not-found")
    grown = next_question(snapshot.resources, snapshot.order, deps.policies, response, deps.today(),
                          default_policy=settings.default_policy, rxnorm_codes=settings.rxnorm_codes,
                          adaptive_url=_adaptive_url(), session=session, user=snapshot.user)
    log.info("dtr next question", extra={"groups": len(grown["item"]), "status": grown["status"]})
    return _fhir(next_question_out(grown))


def _adaptive_url() -> str:
    """The base the SDC adaptive extension names: where $next-question is served."""
    return _base_url() + "/dtr"


def _requested_policy(canonicals: list[str], policies) -> str | None:
    for canonical in canonicals:
        policy_id = policy_of_url(canonical)
        if policy_id in policies.ids:
            return policy_id
    if canonicals:
        raise DtrError(422, "questionnaire: none of the canonicals asked for is a questionnaire of this service",
                       "Parameters.parameter", code="not-found")
    return None


def _chart(asked, deps):
    """(chart, order, policy id, hook user, session key, warnings): the chart the CRD answer was decided on
    (and the hook's userId) when `context` names one this service keeps, else the resources the client
    sent (docs/dtr.md)."""
    settings, snapshots = deps.settings, deps.snapshots
    sent = asked.coverages + asked.referenced + asked.orders
    medications = {reference_of(r): r for r in sent if r.get("resourceType") == "Medication"}
    orders = [o for o in asked.orders if o["resourceType"] == "MedicationRequest"
              and order_is_mecasermin(o, medications, settings.rxnorm_codes)]
    if asked.orders and not orders:
        raise DtrError(422, "order: no order is a mecasermin MedicationRequest; this service documents mecasermin "
                       "(Increlex) orders only", "Parameters.parameter", code="not-supported")
    warnings = []
    if asked.context:
        snapshot = snapshots.recall(asked.context) if snapshots else None
        if snapshot is not None:
            order = orders[0] if orders else snapshot.order
            known = {reference_of(r) for r in snapshot.resources}
            chart = [r for r in snapshot.resources if r is not snapshot.order and reference_of(r) != reference_of(order)]
            chart += [r for r in asked.coverages if reference_of(r) not in known]
            return chart, order, snapshot.policy_id, snapshot.user, asked.context, warnings
        if not orders:
            raise DtrError(422, "context is not a coverage-assertion-id of this service, or its chart has expired; "
                           "send the order (and the resources it needs), or ask CRD again",
                           "Parameters.parameter", code="not-found")
        warnings.append(operation_outcome(
            "context is not a coverage-assertion-id of this service, or its chart has expired: the questionnaire "
            "was built from the resources sent, so it may ask what the chart already holds", code="not-found",
            severity="warning"))
    if not orders:
        raise DtrError(422, "order: a mecasermin MedicationRequest is needed when there is no context (what the "
                       "chart lacks depends on the order)",
                       "Parameters.parameter", code="required")
    order = orders[0]
    chart = [r for r in sent if r is not order]
    session = snapshots.keep_new(chart, order, None) if snapshots else None
    return chart, order, None, None, session, warnings
