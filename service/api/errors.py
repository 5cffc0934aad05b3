"""Errors as values at the edge: every failure is a JSON body that names the problem.

Never a stack trace in a response. Unexpected exceptions are logged by type only (a message
could carry patient data) and answered with a generic 500 body — the suite's fuzzing keeps
that path unused.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, jsonify, request
from werkzeug.exceptions import HTTPException

from service.dtr.outcome import operation_outcome

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **details: Any):
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.details}


_HTTP_NAMES = {
    400: "bad-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
    412: "precondition-failed", 413: "payload-too-large", 415: "unsupported-media-type",
}


# The DTR operations answer FHIR clients, so every failure under their path is an OperationOutcome —
# also the routing errors (a GET: 405; an unknown operation: 404), which Flask raises before the DTR
# blueprint's own handlers could run.
FHIR_PATH = "/dtr/"
FHIR_JSON = "application/fhir+json"
_ISSUE_CODES = {401: "login", 404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported",
                500: "exception"}


def fhir_error(message: str, status: int) -> Response:
    outcome = operation_outcome(message, code=_ISSUE_CODES.get(status, "invalid"))
    return Response(json.dumps(outcome), status=status, mimetype=FHIR_JSON)


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        if request.path.startswith(FHIR_PATH):
            return fhir_error(exc.message, exc.status)
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        if request.path.startswith(FHIR_PATH):
            return fhir_error(exc.description or exc.name, status)
        return jsonify({"error": _HTTP_NAMES.get(status, "http-error"), "message": exc.description}), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unexpected error", extra={"exception_type": type(exc).__name__})
        message = "The service could not process this request."
        if request.path.startswith(FHIR_PATH):
            return fhir_error(message, 500)
        return jsonify({"error": "internal-error", "message": message}), 500
