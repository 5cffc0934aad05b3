"""The `smart` blueprint (under /smart) and what every SMART route shares: the app's setup
(session store), template helpers, security headers, and HTML error pages (`PageError`).

Routes live in `launch_views` (launch, callback, sign-out) and `views` (the pages).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from service.wording.numbers import unit_text
from service.security.fhir_allowlist import fhir_server_allowed
from service.settings import SettingsError
from service.smart import present
from service.smart.packet import frequency_words
from service.smart.sessions import SmartSessions

log = logging.getLogger("service.smart.views")   # the name these log lines have always had



def content_security_policy(*, form_action: str = "'self'", style_nonce: str | None = None,
                            connect: bool = False) -> str:
    """The pages' policy: nothing inline, nothing from elsewhere, framed only by CDS_SMART_FRAME_ANCESTORS.
    `style_nonce` admits the <style> elements a renderer injects that carry it (LHC-Forms' Angular
    components, docs/smart-app.md); `connect` lets the page's script call the app's own endpoints."""
    ancestors = " ".join(app_deps().settings.smart_frame_ancestors) or "'none'"
    styles = f"'self' 'nonce-{style_nonce}'" if style_nonce else "'self'"
    return (f"default-src 'none'; style-src {styles}; img-src 'self' data:; script-src 'self'; "
            + ("connect-src 'self'; " if connect else "")
            + f"form-action {form_action}; base-uri 'none'; frame-ancestors {ancestors}")

blueprint = Blueprint("smart", __name__, url_prefix="/smart", template_folder="templates",
                      static_folder="static", static_url_path="/static")


@dataclass
class SmartDependencies:
    sessions: SmartSessions


class PageError(Exception):
    """Ends a request with an HTML error page."""

    def __init__(self, status: int, title: str, message: str, *, hint: str | None = None, relaunch: bool = True,
                 headers: dict[str, str] | None = None):
        super().__init__(title)
        self.status, self.title, self.message, self.hint = status, title, message, hint
        self.relaunch, self.headers = relaunch, headers or {}


@blueprint.record_once
def _setup(state) -> None:
    app = state.app
    deps = app.extensions["mecasermin"]
    settings = deps.settings
    if settings.smart_default_iss and not fhir_server_allowed(settings.smart_default_iss, settings.fhir_allowlist):
        raise SettingsError("CDS_SMART_DEFAULT_ISS is not on CDS_FHIR_ALLOWLIST")
    if settings.smart_redirect_url:
        parts = urlsplit(settings.smart_redirect_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise SettingsError("CDS_SMART_REDIRECT_URL must be an absolute http(s) URL without a fragment")
    app.extensions["mecasermin_smart"] = SmartDependencies(sessions=SmartSessions(deps.store.database))


def app_deps():
    """The service's dependencies (settings, FHIR client, clock)."""
    return current_app.extensions["mecasermin"]


def smart_sessions() -> SmartSessions:
    return current_app.extensions["mecasermin_smart"].sessions


def fhir_origin(url: str) -> str:
    """scheme://host of a FHIR URL, the only part of it that is logged."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"[:200]


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    return {**present.FILTERS, "STATUS_LABELS": present.STATUS_LABELS, "STATUS_MARKS": present.STATUS_MARKS,
            "SEVERITY_LABELS": present.SEVERITY_LABELS, "unit_text": unit_text,
            "frequency_words": frequency_words, "letter_words": present.letter_words,
            "clinical_notation": present.clinical_notation, "lab_words": present.lab_words,
            "evidence_items": present.evidence_items}


@blueprint.after_request
def _headers(response: Response) -> Response:
    if request.endpoint != "smart.renderer":     # the renderer's files are public and named by version
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", content_security_policy())
    return response


@blueprint.errorhandler(PageError)
def _page_error(exc: PageError):
    response = make_response(render_template("smart/error.html", error=exc), exc.status)
    response.headers.update(exc.headers)
    return response


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    error = PageError(exc.code or 500, exc.name, exc.description or "The request could not be served.")
    return _page_error(error)


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.error("SMART app error", extra={"exception_type": type(exc).__name__})
    return _page_error(PageError(500, "Something went wrong",
                                 "The app could not prepare this page. Nothing was changed in the EHR."))
