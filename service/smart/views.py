"""The SMART on FHIR app's routes (blueprint `smart`, under /smart).

GET  /smart/launch               EHR launch (iss + launch) or standalone launch (iss, or CDS_SMART_DEFAULT_ISS)
GET  /smart/callback             the OAuth redirect URI: checks state, exchanges the code (PKCE S256)
GET  /smart/app                  the criteria checklist, growth chart, labs, label findings
GET  /smart/packet               the letter of medical necessity, printable
GET  /smart/packet.json          the same letter as a FHIR R4 DocumentReference (download)
POST /smart/packet/write-back    writes that DocumentReference to the EHR (needs a write scope)
POST /smart/sign-out             ends the session

Every failure is an HTML page with its HTTP status; tokens, codes and patient ids are never logged.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from service.security.fhir_allowlist import fhir_server_allowed
from service.settings import SettingsError
from service.smart import present
from service.smart.chart import Point, growth_chart
from service.smart.discovery import DiscoveryError, IssNotAllowed, discover
from service.smart.oauth import (OAuthError, authorize_url, can_write_documents, exchange_code, order_reference,
                                 pkce_pair, requested_scopes, valid_order_reference)
from service.policy.evidence_text import unit_text
from service.smart.packet import (LETTER_TITLE, age_text, criterion_sentence, document_reference, evidence_text,
                                  frequency_words,
                                  member_id, patient_name, requester_display, supporting_references)
from service.smart.sessions import SmartSessions
from service.smart.workup import FhirUnavailable, Workup, work_up

log = logging.getLogger(__name__)

COOKIE = "mecasermin_smart_session"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; "
       "base-uri 'none'")

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
    app.extensions["mecasermin_smart"] = SmartDependencies(sessions=SmartSessions(settings.database_path))


def _deps():
    return current_app.extensions["mecasermin"]


def _sessions() -> SmartSessions:
    return current_app.extensions["mecasermin_smart"].sessions


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    return {**present.FILTERS, "STATUS_LABELS": present.STATUS_LABELS, "STATUS_MARKS": present.STATUS_MARKS,
            "SEVERITY_LABELS": present.SEVERITY_LABELS, "unit_text": unit_text,
            "frequency_words": frequency_words}


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", CSP)
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


# ----------------------------------------------------------------------------- helpers

def _redirect_uri() -> str:
    settings = _deps().settings
    if settings.smart_redirect_url:
        return settings.smart_redirect_url
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + url_for("smart.callback")
    return url_for("smart.callback", _external=True)


def _set_cookie(response: Response, session_id: str, max_age: float) -> None:
    secure = request.is_secure or _redirect_uri().startswith("https://")
    response.set_cookie(COOKIE, session_id, max_age=max(1, int(max_age)), path="/smart", httponly=True,
                        samesite="Lax", secure=secure)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"[:200]


@dataclass
class ActiveSession:
    session_id: str
    data: dict[str, Any]
    expires_at: float


def _active_session() -> ActiveSession:
    session_id = request.cookies.get(COOKIE)
    loaded = _sessions().load(session_id)
    if loaded is None or loaded[0].get("phase") != "active":
        raise PageError(
            401, "Your session has ended",
            "This page needs a signed-in SMART session, and there is none in this browser: it has expired, "
            "was signed out, or was never started.",
            hint="Open the app again from the patient's chart in the EHR.",
            headers={"WWW-Authenticate": 'SMART-launch realm="mecasermin-cds", launch="/smart/launch"'})
    data, expires_at = loaded
    if not fhir_server_allowed(data["iss"], _deps().settings.fhir_allowlist):
        raise PageError(403, "FHIR server no longer allowed",
                        "The EHR's FHIR server has been removed from this service's allowlist since sign-in.")
    return ActiveSession(session_id, data, expires_at)


def _work_up(active: ActiveSession) -> Workup:
    deps = _deps()
    data = active.data
    try:
        return work_up(deps, data["iss"], data["access_token"], data["patient"], data.get("order"), deps.today())
    except FhirUnavailable as exc:
        log.warning("SMART work-up failed: FHIR server unavailable", extra={"fhir_origin": _origin(data["iss"])})
        raise PageError(502, "The EHR's FHIR server did not answer",
                        f"The patient's record could not be read: {exc}.",
                        hint="Try again in a moment. If it keeps failing, the app may not have been granted "
                             "read access to this patient's record.") from None


def _page_context(active: ActiveSession, workup: Workup) -> dict[str, Any]:
    record, decision = workup.record, workup.decision
    patient_facts = record.patient
    points = [Point(h.age_years, h.value, h.date, h.sds, h.centile) for h in record.heights
              if h.usable and h.value is not None and h.age_years is not None]
    chart = growth_chart(patient_facts.sex if patient_facts else None, points,
                         patient_facts.age_years if patient_facts else None)
    unknown = [c for c in decision.criteria if c.status == "unknown"]
    return {
        "workup": workup,
        "record": record,
        "decision": decision,
        "patient_name": patient_name(workup.patient),
        "age_text": age_text(patient_facts.birth_date if patient_facts else None, record.today),
        "chart": chart,
        "determination_label": present.DETERMINATION_LABELS.get(decision.determination, decision.determination),
        "how_to_get": [(test, *present.HOW_TO_GET[test]) for test in decision.missing_tests
                       if test in present.HOW_TO_GET],
        "unknown_criteria": unknown,
        "order_reference": active.data.get("order") if workup.order is not None else None,
        "order_note": workup.order_note or active.data.get("order_note"),
        "order_source": active.data.get("order_source"),
        "can_write": can_write_documents(active.data.get("scope", "")),
        "need_patient_banner": active.data.get("need_patient_banner", True),
        "csrf": active.data["csrf"],
        "member_id": member_id(workup.coverage),
        "requester": requester_display(workup.order),
        "supporting": supporting_references(decision),
        "criterion_sentence": criterion_sentence,
        "evidence_text": evidence_text,
        "letter_title": LETTER_TITLE,
    }


def _letter_html(context: dict[str, Any]) -> str:
    return render_template("smart/letter_document.html", **context)


def _check_csrf(active: ActiveSession) -> None:
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), active.data["csrf"].encode()):
        raise PageError(400, "Form expired", "This form was not sent from the app's current page.",
                        hint="Go back to the app, reload the page and try again.")


# ----------------------------------------------------------------------------- launch

@blueprint.get("/launch")
def launch():
    deps = _deps()
    settings = deps.settings
    launch_token = request.args.get("launch") or None
    iss = request.args.get("iss") or (None if launch_token else settings.smart_default_iss) or None
    if launch_token and not iss:
        raise PageError(400, "Launch is missing its FHIR server",
                        "The EHR started the app without saying which FHIR server to use (no iss parameter).",
                        hint="Ask the EHR administrator to check the app's launch URL.", relaunch=False)
    if not iss:
        page = make_response(render_template("smart/choose_server.html", order=request.args.get("order", "")))
        # The form goes to /smart/launch, which redirects to the EHR's sign-in page on another origin.
        page.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", "form-action 'self' https: http:")
        return page
    if len(iss) > 2048 or (launch_token and len(launch_token) > 4096):
        raise PageError(400, "Launch parameters too long", "The launch parameters are longer than any EHR sends.")
    if not fhir_server_allowed(iss, settings.fhir_allowlist):
        log.warning("SMART launch refused: iss not on the FHIR allowlist")
        raise PageError(403, "FHIR server not allowed",
                        "This service only connects to the FHIR servers its administrator has allowed, and the "
                        "server named in this launch is not one of them. No request was sent to it.",
                        hint="If this EHR should be allowed, add its FHIR base URL to CDS_FHIR_ALLOWLIST.",
                        relaunch=False)
    order = request.args.get("order") or None
    order_note = None
    if order and not valid_order_reference(order):
        order, order_note = None, "The launch named an order that is not a MedicationRequest reference; it was ignored."
    try:
        config = discover(iss, settings, deps.fhir_client)
    except IssNotAllowed:
        raise PageError(403, "FHIR server not allowed", "The FHIR server is not on this service's allowlist.",
                        relaunch=False) from None
    except DiscoveryError as exc:
        log.warning("SMART discovery failed", extra={"fhir_origin": _origin(iss)})
        raise PageError(502, "Sign-in service not found",
                        f"The EHR's FHIR server did not say where to sign in: {exc}.",
                        hint="Try again in a moment; if it keeps failing, the EHR may not support SMART launch.") \
            from None
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    redirect_uri = _redirect_uri()
    standalone = launch_token is None
    scope = requested_scopes(config, standalone=standalone, write=settings.smart_request_write)
    pending = {
        "phase": "pending", "state": state, "verifier": verifier, "iss": iss, "redirect_uri": redirect_uri,
        "token_endpoint": config.token_endpoint, "scope": scope, "launch_kind": "standalone" if standalone else "ehr",
        "scope_version": "v2" if config.supports_v2_scopes else "v1", "order": order, "order_note": order_note,
    }
    session_id = _sessions().create(pending, settings.smart_launch_timeout)
    target = authorize_url(config, client_id=settings.smart_client_id, redirect_uri=redirect_uri, scope=scope,
                           state=state, code_challenge=challenge, aud=iss, launch=launch_token)
    log.info("SMART launch started", extra={"launch": pending["launch_kind"], "scope_version": pending["scope_version"],
                                            "discovery": config.source, "fhir_origin": _origin(iss)})
    response = redirect(target, 302)
    _set_cookie(response, session_id, settings.smart_launch_timeout)
    return response


@blueprint.get("/callback")
def callback():
    deps = _deps()
    settings = deps.settings
    sessions = _sessions()
    session_id = request.cookies.get(COOKIE)
    loaded = sessions.load(session_id)
    if loaded is None or loaded[0].get("phase") != "pending":
        raise PageError(401, "This sign-in has expired",
                        "The sign-in took too long, or it was started in another browser or tab that has since "
                        "moved on, so it cannot be completed here.",
                        hint="Open the app again from the patient's chart in the EHR.",
                        headers={"WWW-Authenticate": 'SMART-launch realm="mecasermin-cds", launch="/smart/launch"'})
    pending, _ = loaded
    state = request.args.get("state", "")
    if not state or not hmac.compare_digest(state.encode(), pending["state"].encode()):
        log.warning("SMART callback refused: state does not match")
        raise PageError(400, "Sign-in could not be verified",
                        "The answer from the sign-in service does not belong to the sign-in this browser started "
                        "(its state parameter is missing or different), so it was not used.",
                        hint="Open the app again from the patient's chart in the EHR.")
    error = request.args.get("error")
    if error:
        sessions.delete(session_id)
        if error == "access_denied":
            log.info("SMART sign-in declined by the user or the EHR")
            raise PageError(403, "Access was not granted",
                            "The app was not given permission to read this patient's record, so it cannot show the "
                            "coverage checklist.",
                            hint="To use the app, open it again and approve the access it asks for.")
        code_text = error if error.replace("_", "").isalpha() and len(error) <= 40 else "unrecognised error"
        description = request.args.get("error_description", "")[:300]
        log.warning("SMART sign-in failed at the authorization server", extra={"oauth_error": code_text})
        raise PageError(400, "Sign-in failed",
                        f"The EHR's sign-in service answered with the error “{code_text}”."
                        + (f" It said: {description}" if description else ""))
    code = request.args.get("code")
    if not code or len(code) > 4096:
        sessions.delete(session_id)
        raise PageError(400, "Sign-in failed", "The sign-in service sent no authorization code.")
    try:
        tokens = exchange_code(
            deps.fhir_client.session, pending["token_endpoint"], code=code, redirect_uri=pending["redirect_uri"],
            verifier=pending["verifier"], client_id=settings.smart_client_id,
            client_secret=settings.smart_client_secret, requested_scope=pending["scope"],
            timeout=(settings.fhir_connect_timeout, max(settings.fhir_read_timeout, 5.0)))
    except OAuthError as exc:
        sessions.delete(session_id)
        log.warning("SMART token exchange failed", extra={"reason": str(exc)})
        raise PageError(502, "Sign-in could not be completed",
                        f"The EHR's token service did not give the app access: {exc}.") from None
    order, source = order_reference(tokens.app_context, tokens.fhir_context, pending.get("order"))
    lifetime = float(settings.smart_session_lifetime)
    if tokens.expires_in is not None:
        lifetime = min(lifetime, float(tokens.expires_in))
    active = {
        "phase": "active", "iss": pending["iss"], "access_token": tokens.access_token, "scope": tokens.scope,
        "patient": tokens.patient, "need_patient_banner": tokens.need_patient_banner, "order": order,
        "order_source": source, "order_note": pending.get("order_note"), "csrf": secrets.token_urlsafe(24),
        "launch_kind": pending["launch_kind"], "signed_in_at": time.time(),
    }
    sessions.delete(session_id)   # a fresh id after sign-in: the pre-sign-in cookie is worth nothing
    new_id = sessions.create(active, lifetime)
    log.info("SMART sign-in complete", extra={
        "launch": pending["launch_kind"], "write_scope": can_write_documents(tokens.scope),
        "order_source": source, "session_seconds": int(lifetime)})
    response = redirect(url_for("smart.app_page"), 303)
    _set_cookie(response, new_id, lifetime)
    return response


# ----------------------------------------------------------------------------- pages

@blueprint.get("/app")
def app_page():
    active = _active_session()
    workup = _work_up(active)
    return render_template("smart/app.html", **_page_context(active, workup))


@blueprint.get("/packet")
def packet():
    active = _active_session()
    workup = _work_up(active)
    return render_template("smart/packet.html", **_page_context(active, workup))


@blueprint.get("/packet.json")
def packet_json():
    active = _active_session()
    workup = _work_up(active)
    context = _page_context(active, workup)
    resource = document_reference(
        _letter_html(context), patient_id=active.data["patient"], order_reference=context["order_reference"],
        created=datetime.now(timezone.utc), determination=workup.decision.determination)
    response = current_app.response_class(current_app.json.dumps(resource), mimetype="application/fhir+json")
    response.headers["Content-Disposition"] = 'attachment; filename="mecasermin-letter-of-medical-necessity.json"'
    return response


@blueprint.post("/packet/write-back")
def write_back():
    active = _active_session()
    _check_csrf(active)
    if not can_write_documents(active.data.get("scope", "")):
        raise PageError(403, "Writing to the EHR is not permitted",
                        "The EHR granted this app read access only, so it cannot save the letter in the chart. "
                        "You can still print it or download it as a FHIR DocumentReference.",
                        hint="Writing needs the scope patient/DocumentReference.c (SMART v2) or "
                             "patient/DocumentReference.write (v1); the service asks for it when "
                             "CDS_SMART_REQUEST_WRITE is on and the EHR approves it.",
                        relaunch=False)
    deps = _deps()
    workup = _work_up(active)
    context = _page_context(active, workup)
    resource = document_reference(
        _letter_html(context), patient_id=active.data["patient"], order_reference=context["order_reference"],
        created=datetime.now(timezone.utc), determination=workup.decision.determination)
    settings = deps.settings
    url = active.data["iss"].rstrip("/") + "/DocumentReference"
    try:
        answer = deps.fhir_client.session.post(
            url, data=current_app.json.dumps(resource).encode("utf-8"),
            headers={"Authorization": f"Bearer {active.data['access_token']}",
                     "Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                     "Prefer": "return=minimal"},
            timeout=(settings.fhir_connect_timeout, settings.fhir_read_timeout), allow_redirects=False)
        answer.close()
    except requests.RequestException as exc:
        log.warning("SMART write-back failed", extra={"reason": type(exc).__name__})
        raise PageError(502, "The letter was not saved", "The EHR's FHIR server could not be reached.",
                        relaunch=False) from None
    if answer.status_code not in (200, 201):
        log.warning("SMART write-back refused", extra={"status": answer.status_code})
        raise PageError(502, "The letter was not saved",
                        f"The EHR's FHIR server refused the document (HTTP {answer.status_code}).", relaunch=False)
    location = answer.headers.get("Location", "")
    parts = location.rstrip("/").split("/")
    written = None
    if "DocumentReference" in parts:
        index = parts.index("DocumentReference")
        written = "/".join(parts[index:index + 2])
    log.info("SMART write-back saved a DocumentReference")
    return render_template("smart/written.html", written=written, **context), 201


@blueprint.post("/sign-out")
def sign_out():
    active = _active_session()
    _check_csrf(active)
    _sessions().delete(active.session_id)
    response = make_response(render_template("smart/signed_out.html"))
    response.delete_cookie(COOKIE, path="/smart")
    return response
