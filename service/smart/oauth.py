"""SMART App Launch, the OAuth 2.0 parts: PKCE, scopes, the authorize URL and the token exchange.

Pure helpers except `exchange_code`, which POSTs to the token endpoint with the service's pooled
HTTP session (no proxy from the environment, timeouts, no redirects). Nothing here logs: the
caller logs events without tokens, codes or patient ids.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import time

import jwt
import requests

from service.smart.discovery import SmartConfiguration

MAX_TOKEN_RESPONSE_BYTES = 256 * 1024
_FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
_RESOURCE_ID = re.compile(rf"^{_FHIR_ID}$")
USER_TYPES = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
_ORDER_REFERENCE = re.compile(rf"^MedicationRequest/{_FHIR_ID}$")
# A scope that lets the app create a resource of a type: v2 `.c…` (cruds letters) or v1 `.write` / `.*`.
_WRITE_SCOPE = re.compile(r"^(patient|user)/([A-Za-z]+|\*)\.(write|\*|(?=[cruds]+$)c?r?u?d?s?)$")
# What the app writes back when the EHR allows it: the letter, and the DTR questionnaire's answers.
WRITTEN_TYPES = ("DocumentReference", "QuestionnaireResponse")


class OAuthError(Exception):
    """The token endpoint did not give a usable token; the message says why (no secrets in it)."""


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 describes them."""
    verifier = secrets.token_urlsafe(64)          # 86 characters of [A-Za-z0-9_-]
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def requested_scopes(config: SmartConfiguration, *, standalone: bool, write: bool) -> str:
    """The scope string: SMART v2 when the server shows v2 support, else the v1 forms."""
    v2 = config.supports_v2_scopes
    scopes = ["launch/patient" if standalone else "launch", "openid", "fhirUser",
              "patient/*.rs" if v2 else "patient/*.read"]
    if write:
        scopes += [f"patient/{t}.c" if v2 else f"patient/{t}.write" for t in WRITTEN_TYPES]
    return " ".join(scopes)


def authorize_url(config: SmartConfiguration, *, client_id: str, redirect_uri: str, scope: str, state: str,
                  code_challenge: str, aud: str, launch: str | None) -> str:
    """The authorization endpoint with the request's parameters added to any it already has."""
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "aud": aud, "code_challenge": code_challenge, "code_challenge_method": "S256",
    }
    if launch:
        params["launch"] = launch
    parts = urlsplit(config.authorization_endpoint)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), ""))


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    scope: str
    patient: str
    expires_in: int | None
    need_patient_banner: bool
    app_context: str | None
    fhir_context: tuple[Mapping[str, Any], ...]
    fhir_user: str | None = None          # "Practitioner/abc", from the id_token's fhirUser claim
    fhir_user_note: str | None = None     # why there is none (no id_token, unreadable, wrong audience...)

    def __repr__(self) -> str:   # never print the token, even in a traceback or a debugger
        return f"TokenResponse(scope={self.scope!r}, expires_in={self.expires_in!r})"


def id_token_user(id_token: Any, *, client_id: str, now: float) -> tuple[str | None, str | None]:
    """(fhirUser, None) or (None, why not) from an OpenID Connect id_token.

    The token came straight from the token endpoint over the connection the app opened, so
    OpenID Connect Core §3.1.3.7 (6) lets TLS stand in for the signature; its audience, expiry
    and the shape of fhirUser are still checked, because a token for another client, an old
    one, or a claim naming something other than a user must not decide who is signed in.
    """
    if not isinstance(id_token, str) or not id_token:
        return None, "the EHR sent no id_token"
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False, "verify_exp": False,
                                               "verify_aud": False})
    except jwt.PyJWTError:
        return None, "the id_token could not be read"
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        return None, "the id_token was issued to another client"
    expires = claims.get("exp")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires + 60 < now:
        return None, "the id_token has expired"
    user = claims.get("fhirUser")
    if not isinstance(user, str) or not user:
        return None, "the id_token names no fhirUser"
    reference = fhir_user_reference(user)
    if reference is None:
        return None, "the id_token's fhirUser is not a Practitioner, PractitionerRole, Patient or RelatedPerson"
    return reference, None


def fhir_user_reference(value: str) -> str | None:
    """'Type/id' for a fhirUser that is a relative or absolute URL of one of the four user types."""
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] in USER_TYPES and _RESOURCE_ID.match(parts[-1]):
        return f"{parts[-2]}/{parts[-1]}"
    return None


def user_role(fhir_user: str | None) -> str:
    """'patient' for a patient or a related person, 'clinician' for a practitioner, 'unknown' without fhirUser."""
    if fhir_user is None:
        return "unknown"
    return "patient" if fhir_user.split("/")[0] in ("Patient", "RelatedPerson") else "clinician"


def parse_token_response(body: Any, requested_scope: str, *, client_id: str = "",
                         now: float | None = None) -> TokenResponse:
    """Check a token response; OAuthError names what is wrong (never the values)."""
    if not isinstance(body, Mapping):
        raise OAuthError("the token response is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token or len(token) > 16384:
        raise OAuthError("the token response has no access_token")
    if str(body.get("token_type", "")).lower() != "bearer":
        raise OAuthError("the token type is not Bearer")
    patient = body.get("patient")
    if not isinstance(patient, str) or not _RESOURCE_ID.match(patient):
        raise OAuthError("the authorization server gave no patient in context")
    scope = body.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise OAuthError("the granted scope is not a string")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
        expires_in = None
    app_context = body.get("appContext")
    if isinstance(app_context, (dict, list)):
        app_context = json.dumps(app_context)
    fhir_context = tuple(item for item in body.get("fhirContext") or () if isinstance(item, Mapping)) \
        if isinstance(body.get("fhirContext"), list) else ()
    fhir_user, fhir_user_note = id_token_user(body.get("id_token"), client_id=client_id,
                                              now=time.time() if now is None else now)
    return TokenResponse(
        fhir_user=fhir_user, fhir_user_note=fhir_user_note,
        access_token=token,
        # RFC 6749 §5.1: an omitted scope means the one requested was granted.
        scope=scope if isinstance(scope, str) else requested_scope,
        patient=patient,
        expires_in=int(expires_in) if expires_in is not None else None,
        need_patient_banner=body.get("need_patient_banner") is not False,
        app_context=app_context if isinstance(app_context, str) else None,
        fhir_context=fhir_context,
    )


def exchange_code(http: requests.Session, token_endpoint: str, *, code: str, redirect_uri: str, verifier: str,
                  client_id: str, client_secret: str, requested_scope: str,
                  timeout: tuple[float, float]) -> TokenResponse:
    """POST the authorization code (with the PKCE verifier) and check the answer."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    if client_secret:
        # client_secret_basic: both parts form-encoded before base64 (RFC 6749 §2.3.1).
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        form["client_id"] = client_id
    try:
        response = http.post(token_endpoint, data=form, headers=headers, timeout=timeout,
                             allow_redirects=False, stream=True)
    except requests.Timeout:
        raise OAuthError("the token endpoint did not answer in time") from None
    except requests.RequestException as exc:
        raise OAuthError(f"the token endpoint could not be reached ({type(exc).__name__})") from None
    try:
        raw = response.raw.read(MAX_TOKEN_RESPONSE_BYTES + 1, decode_content=True)
    except Exception as exc:  # noqa: BLE001 — a broken connection is one more reason to stop
        raise OAuthError(f"the token response could not be read ({type(exc).__name__})") from None
    finally:
        response.close()
    if len(raw) > MAX_TOKEN_RESPONSE_BYTES:
        raise OAuthError("the token response is too large")
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, Mapping) else None
        named = f", error {error!r}" if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else ""
        raise OAuthError(f"the token endpoint answered HTTP {response.status_code}{named}")
    return parse_token_response(body, requested_scope, client_id=client_id)


def can_create(scope: str, resource_type: str) -> bool:
    """Does the granted scope let the app create a `resource_type` for the patient?"""
    for item in scope.split():
        match = _WRITE_SCOPE.match(item)
        if match and match.group(2) in (resource_type, "*") and (match.group(3) in ("write", "*") or "c" in match.group(3)):
            return True
    return False


def can_write_documents(scope: str) -> bool:
    """Does the granted scope let the app create a DocumentReference (the letter) for the patient?"""
    return can_create(scope, "DocumentReference")


def order_reference(app_context: str | None, fhir_context: tuple[Mapping[str, Any], ...],
                    launch_param: str | None) -> tuple[str | None, str | None]:
    """(the order under review, where it came from), from the EHR's context first, then the launch URL.

    appContext (CDS Hooks Link.appContext, returned in the token response) may be
    `order=MedicationRequest/abc`, a bare `MedicationRequest/abc`, or JSON `{"order": "..."}`;
    SMART v2 `fhirContext` may carry `{"reference": "MedicationRequest/abc"}`.
    """
    for candidate in _from_app_context(app_context):
        if _ORDER_REFERENCE.match(candidate):
            return candidate, "appContext"
    for item in fhir_context:
        reference = item.get("reference")
        if isinstance(reference, str) and _ORDER_REFERENCE.match(reference):
            return reference, "fhirContext"
    if launch_param and _ORDER_REFERENCE.match(launch_param):
        return launch_param, "launch URL"
    return None, None


def valid_order_reference(value: str | None) -> bool:
    return bool(value) and bool(_ORDER_REFERENCE.match(value))


def _from_app_context(app_context: str | None) -> list[str]:
    if not app_context or len(app_context) > 4096:
        return []
    text = app_context.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return []
        order = value.get("order") if isinstance(value, dict) else None
        return [order] if isinstance(order, str) else []
    if "=" in text:
        return [value for key, value in parse_qsl(text, keep_blank_values=False) if key == "order"]
    return [text]
