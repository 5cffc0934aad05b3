"""CDS Hooks endpoints: discovery, service calls and feedback."""
from __future__ import annotations

import logging
import time
from typing import Sequence

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from service import metrics
from service.api.errors import ApiError
from service.api.request_body import read_json
from service.api.request_log import bind_hook_instance
from service.api.services import SERVICES, CdsService
from service.fhir.gather import PatientUnavailable
from service.pipeline import answer_hook, count_resources
from service.security.auth_errors import AuthenticationFailed
from service.validation import CONTEXT_SCHEMAS, violations

log = logging.getLogger(__name__)
blueprint = Blueprint("cds", __name__)
AUDIT_RETRY_AFTER_S = 5


def _deps():
    return current_app.extensions["mecasermin"]


@blueprint.get("/cds-services")
def discovery():
    return jsonify({"services": [s.discovery_entry() for s in SERVICES.values()]})


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str):
    started = time.perf_counter()
    service = _service(service_id)
    _authenticate()
    deps = _deps()
    body = read_json(request, deps.settings.max_body_bytes, deps.settings.max_json_depth)
    bind_hook_instance(body)
    resources = _validate_call(service, body)
    try:
        outcome = answer_hook(service, body, deps, _base_url(), resources)
    except PatientUnavailable as exc:
        raise ApiError(412, "patient-unavailable", str(exc)) from None
    audit = outcome.audit(service.id, body, elapsed_ms=(time.perf_counter() - started) * 1000)
    if outcome.declined:
        deps.deferred_audit.submit(audit)
    else:
        _record_audit(audit, outcome.sealed_charts)
    metrics.hook_call(service.id, audit)
    return jsonify(outcome.response)


def _record_audit(audit: dict, sealed_charts: Sequence = ()) -> None:
    """No cards without their audit row (docs/operations.md, "When the audit write fails")."""
    try:
        _record_with_charts(audit, sealed_charts)
    except SQLAlchemyError as exc:
        metrics.AUDIT_WRITE_FAILURES.inc()
        log.error("audit write failed: the call is refused", extra={"error": type(exc).__name__})
        raise ApiError(503, "audit-unavailable",
                       "The service could not record this call in its audit log; no advice is given without it. "
                       "Try again shortly.", retry_after_seconds=AUDIT_RETRY_AFTER_S) from None


def _record_with_charts(audit: dict, sealed_charts: Sequence) -> None:
    """The answer's DTR charts in its audit row's transaction: one commit for both (docs/dtr.md). When
    that fails, the audit row is written alone: the answer stands without its charts, as DTR can ask
    from what the client sends."""
    store = _deps().store
    if not sealed_charts:
        store.record_audit(audit)
        return
    try:
        store.record_audit(audit, [statement for chart in sealed_charts for statement in chart.statements])
    except SQLAlchemyError as exc:
        log.warning("DTR chart snapshot not kept", extra={"error": type(exc).__name__})
        store.record_audit(audit)
        return
    for chart in sealed_charts:
        chart.remember()


@blueprint.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    _service(service_id)
    _authenticate()
    deps = _deps()
    body = read_json(request, deps.settings.max_body_bytes, deps.settings.max_json_depth)
    problems = violations("feedback.schema.json", body)
    if problems:
        raise _schema_error(problems)
    _check_cards_issued(deps.store, service_id, body["feedback"])
    stored = deps.store.save_feedback(service_id, body["feedback"])
    log.info("feedback stored", extra={"items": stored})
    return jsonify({"stored": stored})


def _check_cards_issued(store, service_id: str, items) -> None:
    """Feedback is about a card this service gave: any other uuid would only fill the reports with noise."""
    issued = store.issued_cards(service_id, [item["card"] for item in items])
    unknown = [index for index, item in enumerate(items) if item["card"] not in issued]
    if unknown:
        paths = [f"$.feedback[{index}].card" for index in unknown]
        raise ApiError(422, "unknown-card", f"{paths[0]}: service {service_id!r} issued no card with this uuid; "
                       "nothing was stored.",
                       violations=[{"path": path, "rule": "not a card this service issued"} for path in paths[:20]])


def _service(service_id: str) -> CdsService:
    service = SERVICES.get(service_id)
    if service is None:
        raise ApiError(404, "unknown-service", f"There is no CDS service {service_id!r}; see GET /cds-services.")
    return service


def _base_url() -> str:
    """The service's public base URL: configured (behind a proxy) or as this request reached us."""
    return _deps().settings.public_base_url.rstrip("/") or request.host_url.rstrip("/")


def _authenticate() -> None:
    deps = _deps()
    audience = _base_url() + request.path
    try:
        deps.authenticator.authenticate(request.headers.get("Authorization"), audience)
    except AuthenticationFailed as exc:
        log.info("client authentication failed", extra={"reason": exc.reason})
        metrics.auth_failure(exc.reason)
        # Bare 401: say nothing that helps an attacker tune a forged token.
        raise ApiError(401, "unauthorized", "Authentication failed.") from None


def _validate_call(service: CdsService, body) -> int:
    """The call's resources (`count_resources`) when it may be answered; else the 400 or 413."""
    problems = violations("cds-request.schema.json", body)
    if problems:
        raise _schema_error(problems)
    if body["hook"] != service.hook:
        raise ApiError(400, "hook-mismatch",
                       f"Service {service.id!r} answers the {service.hook!r} hook, not {body['hook']!r}.")
    problems = violations(CONTEXT_SCHEMAS[service.hook], body["context"], prefix="$.context")
    if problems:
        raise _schema_error(problems)
    limit, resources = _deps().settings.max_resources, count_resources(body)
    if resources > limit:
        raise ApiError(413, "too-many-resources",
                       f"prefetch and draftOrders together hold more than {limit} resources.")
    return resources


def _schema_error(problems) -> ApiError:
    first = problems[0]
    return ApiError(400, "invalid-request", f"{first.path}: {first.rule}",
                    violations=[p.to_json() for p in problems[:20]])

