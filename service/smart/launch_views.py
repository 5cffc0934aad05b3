"""The SMART launch and sign-in routes (blueprint `smart`, under /smart).

GET  /smart/launch      EHR launch (iss + launch) or standalone launch (iss, or CDS_SMART_DEFAULT_ISS)
                        (GET /smart/dtr with iss or launch is the same launch, landing on the DTR page)
GET  /smart/callback    the OAuth redirect URI: checks state, exchanges the code (PKCE S256)
POST /smart/sign-out    ends the session

Every failure is an HTML page with its HTTP status; tokens, codes and patient ids are never logged.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time

from flask import make_response, redirect, render_template, request, url_for

from service.security.fhir_allowlist import fhir_server_allowed
from service.smart.blueprint import PageError, app_deps, content_security_policy, blueprint, fhir_origin, smart_sessions
from service.smart.browser_session import (COOKIE, active_session, callback_url, check_csrf,
                                           delete_session_cookie, set_session_cookie)
from service.smart.discovery import DiscoveryError, IssNotAllowed, discover
from service.smart.oauth import (OAuthError, authorize_url, can_write_documents, exchange_code, order_reference,
                                 pkce_pair, requested_scopes, user_role, valid_order_reference)

log = logging.getLogger("service.smart.views")   # the name these log lines have always had


# Where a signed-in launch lands: the checklist, or the DTR questionnaire (a CDS card's DTR link).
LANDINGS = {"app": "smart.app_page", "dtr": "smart.dtr_page"}


@blueprint.get("/launch")
def launch():
    return start_launch("app")


def start_launch(landing: str):
    """An EHR launch (iss + launch) or a standalone one; after sign-in the browser lands on `landing`."""
    deps = app_deps()
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
        page.headers["Content-Security-Policy"] = content_security_policy(form_action="'self' https: http:")
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
        log.warning("SMART discovery failed", extra={"fhir_origin": fhir_origin(iss)})
        raise PageError(502, "Sign-in service not found",
                        f"The EHR's FHIR server did not say where to sign in: {exc}.",
                        hint="Try again in a moment; if it keeps failing, the EHR may not support SMART launch.") \
            from None
    verifier, challenge = pkce_pair()
    # The state doubles as the id of a marker that holds no secret, only where the launch began:
    # when the callback arrives without the cookie, it tells "expired" from "cookie not sent".
    state = secrets.token_urlsafe(32)
    redirect_uri = callback_url()
    standalone = launch_token is None
    scope = requested_scopes(config, standalone=standalone, write=settings.smart_request_write)
    pending = {
        "phase": "pending", "state": state, "verifier": verifier, "iss": iss, "redirect_uri": redirect_uri,
        "token_endpoint": config.token_endpoint, "scope": scope, "launch_kind": "standalone" if standalone else "ehr",
        "scope_version": "v2" if config.supports_v2_scopes else "v1", "order": order, "order_note": order_note,
        "landing": landing,
    }
    sessions = smart_sessions()
    session_id = sessions.create(pending, settings.smart_launch_timeout)
    sessions.save(state, {"phase": "launch-marker", "launch_origin": request.host_url.rstrip("/")},
                  sessions.clock() + settings.smart_launch_timeout)
    target = authorize_url(config, client_id=settings.smart_client_id, redirect_uri=redirect_uri, scope=scope,
                           state=state, code_challenge=challenge, aud=iss, launch=launch_token)
    log.info("SMART launch started", extra={"launch": pending["launch_kind"], "scope_version": pending["scope_version"],
                                            "discovery": config.source, "fhir_origin": fhir_origin(iss)})
    response = redirect(target, 302)
    set_session_cookie(response, session_id, settings.smart_launch_timeout)
    return response


@blueprint.get("/callback")
def callback():
    deps = app_deps()
    settings = deps.settings
    sessions = smart_sessions()
    session_id = request.cookies.get(COOKIE)
    loaded = sessions.load(session_id)
    if loaded is None and not session_id:
        _cookie_not_sent(request.args.get("state"))
    if loaded is None or loaded[0].get("phase") != "pending":
        raise PageError(401, "This sign-in has expired",
                        "The sign-in took too long, or it was started in another browser or tab that has since "
                        "moved on, so it cannot be completed here.",
                        hint="Open the app again from the patient's chart in the EHR.",
                        headers={"WWW-Authenticate": 'SMART-launch realm="mecasermin-cds", launch="/smart/launch"'})
    pending, _ = loaded
    state = request.args.get("state", "")
    sessions.delete(state)
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
        "fhir_user": tokens.fhir_user, "fhir_user_note": tokens.fhir_user_note, "role": user_role(tokens.fhir_user),
        "entered": {}, "written": {},
    }
    sessions.delete(session_id)   # a fresh id after sign-in: the pre-sign-in cookie is worth nothing
    new_id = sessions.create(active, lifetime)
    log.info("SMART sign-in complete", extra={
        "launch": pending["launch_kind"], "write_scope": can_write_documents(tokens.scope),
        "order_source": source, "session_seconds": int(lifetime), "role": active["role"]})
    response = redirect(url_for(LANDINGS.get(pending.get("landing"), LANDINGS["app"])), 303)
    set_session_cookie(response, new_id, lifetime)
    return response


def _cookie_not_sent(state: str | None) -> None:
    """The callback came without the app's cookie: say why when the launch is known, instead of "expired"."""
    loaded = smart_sessions().load(state)
    if loaded is None or loaded[0].get("phase") != "launch-marker":
        return
    began, here = loaded[0]["launch_origin"], request.host_url.rstrip("/")
    if began.lower() != here.lower():
        log.warning("SMART callback on another origin than the launch")
        raise PageError(409, "The app was opened at another address",
                        f"The sign-in began at {began}, but the EHR sent it back to {here}, the address this "
                        "service is configured with (CDS_PUBLIC_BASE_URL or CDS_SMART_REDIRECT_URL). The browser "
                        "keeps the sign-in for the address where it began, so it cannot be completed here.",
                        hint=f"Launch the app at {here}/smart/launch (register that URL in the EHR), or set "
                             "CDS_PUBLIC_BASE_URL to the address the EHR uses.", relaunch=False)
    log.warning("SMART callback without the session cookie")
    raise PageError(400, "The browser did not send the app's sign-in cookie",
                    "The EHR sent the sign-in back, but this browser did not send the cookie the app set when the "
                    "sign-in began. Either the sign-in began in another browser, or the browser withheld the "
                    "cookie: that happens when the EHR shows the app inside its own page from another site and "
                    "the app is served over plain http, or when the browser blocks all cookies in embedded pages.",
                    hint="Serve the app over https (its cookie is then SameSite=None; Secure; Partitioned), or open "
                         "it in its own window or tab.", relaunch=False)


@blueprint.post("/sign-out")
def sign_out():
    active = active_session()
    check_csrf(active)
    smart_sessions().delete(active.session_id)
    response = make_response(render_template("smart/signed_out.html"))
    delete_session_cookie(response)
    return response
