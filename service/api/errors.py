"""Errors as values at the edge: every failure is a JSON body that names the problem.

Never a stack trace in a response. Unexpected exceptions are logged by type only (a message
could carry patient data) and answered with a generic 500 body — the suite's fuzzing keeps
that path unused.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

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


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        return jsonify({"error": _HTTP_NAMES.get(status, "http-error"), "message": exc.description}), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unexpected error", extra={"exception_type": type(exc).__name__})
        return jsonify({"error": "internal-error", "message": "The service could not process this request."}), 500
