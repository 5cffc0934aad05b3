"""The browser's side of a SMART session: the session cookie, the signed-in session it names,
and the CSRF check on the app's forms. The session data itself is stored by `sessions.SmartSessions`.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from flask import Response, request, url_for

from service.security.fhir_allowlist import fhir_server_allowed
from service.smart.blueprint import PageError, app_deps, smart_sessions

COOKIE = "mecasermin_smart_session"


def callback_url() -> str:
    """The OAuth redirect URI: CDS_SMART_REDIRECT_URL, else /smart/callback under the public base URL."""
    settings = app_deps().settings
    if settings.smart_redirect_url:
        return settings.smart_redirect_url
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + url_for("smart.callback")
    return url_for("smart.callback", _external=True)


def set_session_cookie(response: Response, session_id: str, max_age: float) -> None:
    """HttpOnly, path /smart. Over https it is `SameSite=None; Secure; Partitioned`: an EHR that frames
    the app from another site gets the cookie back at the callback (a Lax cookie is withheld from a
    cross-site frame), and CHIPS keeps it in that EHR's partition, out of reach of any other site.
    Over plain http (a laptop) it stays Lax, since browsers refuse SameSite=None without Secure."""
    secure = request.is_secure or callback_url().startswith("https://")
    response.set_cookie(COOKIE, session_id, max_age=max(1, int(max_age)), path="/smart", httponly=True,
                        samesite="None" if secure else "Lax", secure=secure, partitioned=secure)


def delete_session_cookie(response: Response) -> None:
    secure = request.is_secure or callback_url().startswith("https://")
    response.delete_cookie(COOKIE, path="/smart", httponly=True, samesite="None" if secure else "Lax",
                           secure=secure, partitioned=secure)


@dataclass
class ActiveSession:
    session_id: str
    data: dict[str, Any]
    expires_at: float


def active_session() -> ActiveSession:
    """The signed-in session named by this request's cookie, or a 401/403 PageError."""
    session_id = request.cookies.get(COOKIE)
    loaded = smart_sessions().load(session_id)
    if loaded is None or loaded[0].get("phase") != "active":
        raise PageError(
            401, "Your session has ended",
            "This page needs a signed-in SMART session, and there is none in this browser: it has expired, "
            "was signed out, or was never started.",
            hint="Open the app again from the patient's chart in the EHR.",
            headers={"WWW-Authenticate": 'SMART-launch realm="mecasermin-cds", launch="/smart/launch"'})
    data, expires_at = loaded
    if not fhir_server_allowed(data["iss"], app_deps().settings.fhir_allowlist):
        raise PageError(403, "FHIR server no longer allowed",
                        "The EHR's FHIR server has been removed from this service's allowlist since sign-in.")
    return ActiveSession(session_id, data, expires_at)


def check_csrf(active: ActiveSession) -> None:
    """The session's token, from the form's `csrf` field or (a script's JSON call) the X-CSRF-Token header."""
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), active.data["csrf"].encode()):
        raise PageError(400, "Form expired", "This form was not sent from the app's current page.",
                        hint="Go back to the app, reload the page and try again.")
