"""Per-request log context: every log line of a request carries its request id and hook instance.

The request id is the caller's `X-Request-ID` when it is a short plain token, else a new one; it
is echoed in the response. The hook instance is bound once the body has been read
(`bind_hook_instance`). One line per request records method, path, status and duration — never
headers or bodies.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from service.logs import reset_log_context, set_log_context

log = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def register(app: Flask) -> None:
    # Runs before every other before_request function (the CORS preflight included).
    app.before_request_funcs.setdefault(None, []).insert(0, _bind)
    app.after_request(_finish)
    app.teardown_request(_unbind)


def bind_hook_instance(body: Any) -> None:
    """Add the request's `hookInstance` to the log context (until the request ends)."""
    value = body.get("hookInstance") if isinstance(body, dict) else None
    if isinstance(value, str) and _SAFE_ID.match(value):
        set_log_context(hook_instance=value)   # undone with the whole request context in _unbind


def _bind() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    g.request_id = request_id
    g.request_started = time.perf_counter()
    g.log_context_token = set_log_context(request_id=request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    log.info("request", extra={
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
    })
    return response


def _unbind(_exc: BaseException | None) -> None:
    token = g.pop("log_context_token", None)
    if token is not None:
        try:
            reset_log_context(token)
        except ValueError:      # created in another context (cannot happen under WSGI); keep going
            pass
