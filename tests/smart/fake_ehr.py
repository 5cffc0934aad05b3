"""A small fake EHR on a loopback port: SMART discovery, an authorization server and a FHIR server.

It checks what a real one would: the authorize request's parameters, the PKCE verifier against
the S256 challenge, the client's authentication, single use of codes, and a bearer token on every
FHIR request. It records each request so tests can look at what the app sent.
"""
from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlencode, urlsplit

import jwt

from service.smart.oauth import pkce_challenge
from tests.fixtures import PATIENT_ID, laron_prefetch, mecasermin_order

def practitioner(npi: str | None = "1234567893") -> dict:
    """The prescriber as US EHRs record one: official name with credentials, NPI identifier."""
    resource = {"resourceType": "Practitioner", "id": "dr-7", "active": True,
                "name": [{"use": "official", "family": "Adeyemi", "given": ["Grace"], "suffix": ["MD"]}],
                "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360",
                                                        "code": "MD"}], "text": "MD"}}],
                "address": [{"use": "home", "line": ["12 Private Lane"], "city": "Seattle"},
                            {"use": "work", "line": ["4800 Sand Point Way NE"], "city": "Seattle", "state": "WA",
                             "postalCode": "98105"}]}
    if npi:
        resource["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}]
    return resource


def practitioner_role() -> dict:
    return {"resourceType": "PractitionerRole", "id": "role-7", "active": True,
            "practitioner": {"reference": "Practitioner/dr-7"},
            "organization": {"reference": "Organization/endo", "display": "Children's Endocrine Clinic"},
            "telecom": [{"system": "phone", "value": "+1 206 555 0142", "use": "work"},
                        {"system": "fax", "value": "+1 206 555 0143", "use": "work"}]}


SEARCH_KEYS = {"Condition": "conditions", "Observation": "observations", "MedicationRequest": "medications",
               "MedicationStatement": "medicationstatements", "MedicationDispense": "medicationdispenses",
               "MedicationAdministration": "medicationadministrations",
               "AllergyIntolerance": "allergies", "Coverage": "coverage", "DiagnosticReport": "reports"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 64     # the service fetches every search of a call at once, as EHR servers allow


@dataclass
class FakeEhr:
    client_id: str = "mecasermin-cds"
    client_secret: str | None = None          # set: the token endpoint requires client_secret_basic
    v2: bool = True                           # advertise SMART v2 scopes
    discovery: str = "well-known"             # well-known | metadata | none
    authorize_mode: str = "approve"           # approve | deny
    grant_scope: str | None = None            # None: grant what was asked
    expires_in: int = 3600
    need_patient_banner: bool = True
    app_context: str | None = None
    fhir_context: list | None = None
    fhir_status: int | None = None            # answer every FHIR request with this status
    corrupt_challenge: bool = False           # behave as if the code had been issued for another verifier
    document_status: int = 201                # answer to POST DocumentReference
    prefetch: dict = field(default_factory=laron_prefetch)
    orders: dict = field(default_factory=lambda: {"mr-1": mecasermin_order()})
    medications: dict = field(default_factory=dict)   # Medication resources by id
    fhir_user: str | None = "Practitioner/dr-7"   # the id_token's fhirUser claim; None: no id_token
    id_token_audience: str | None = None          # None: the client id
    practitioners: dict = field(default_factory=lambda: {"dr-7": practitioner()})
    practitioner_roles: list = field(default_factory=lambda: [practitioner_role()])
    patients: dict = field(default_factory=dict)  # other Patient/RelatedPerson resources by "Type/id"
    # what the fake saw
    requests: list = field(default_factory=list)        # (method, path with query, headers)
    authorize_requests: list = field(default_factory=list)
    token_requests: list = field(default_factory=list)  # (form, headers)
    issued: list = field(default_factory=list)          # every token response body
    documents: list = field(default_factory=list)       # DocumentReferences POSTed
    questionnaire_responses: list = field(default_factory=list)   # QuestionnaireResponses POSTed
    codes: dict = field(default_factory=dict)

    tls: Any = None                           # an ssl.SSLContext: serve https (for the cross-site frame test)

    def __post_init__(self):
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def iss(self) -> str:
        return self.base + "/fhir"

    def start(self) -> "FakeEhr":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def access_tokens(self) -> list[str]:
        return [body["access_token"] for body in self.issued]

    def secrets_seen(self) -> list[str]:
        """Every secret value that passed through the flow: none may appear in logs or cookies."""
        values = []
        for body in self.issued:
            values += [body["access_token"], body["id_token"], body["refresh_token"]]
        for form, _ in self.token_requests:
            values += [form.get("code", ""), form.get("code_verifier", "")]
        if self.client_secret:
            values.append(self.client_secret)
        return [v for v in values if v]

    # ------------------------------------------------------------------ documents

    def smart_configuration(self) -> dict:
        scopes = ["openid", "fhirUser", "launch", "launch/patient", "offline_access"]
        scopes += (["patient/*.rs", "patient/*.cruds", "patient/DocumentReference.c"] if self.v2
                   else ["patient/*.read", "patient/*.write"])
        capabilities = ["launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
                        "context-ehr-patient", "context-standalone-patient", "sso-openid-connect", "permission-v1"]
        if self.v2:
            capabilities.append("permission-v2")
        return {
            "issuer": self.base + "/auth",
            "authorization_endpoint": self.base + "/auth/authorize",
            "token_endpoint": self.base + "/auth/token",
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "grant_types_supported": ["authorization_code"],
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "capabilities": capabilities,
            "code_challenge_methods_supported": ["S256"],
        }

    def capability_statement(self) -> dict:
        return {
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"],
            "rest": [{"mode": "server", "security": {
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                         "code": "SMART-on-FHIR"}]}],
                "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                               "extension": [{"url": "authorize", "valueUri": self.base + "/auth/authorize"},
                                             {"url": "token", "valueUri": self.base + "/auth/token"}]}]}}],
        }


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """client_secret_basic as RFC 6749 §2.3.1 defines it: both parts form-encoded, then base64."""
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:
        return None
    return unquote_plus(user), unquote_plus(password)


def _operation_outcome(code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


def _handler(ehr: FakeEhr):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):   # keep test output quiet
            pass

        def _send(self, status: int, body: Any = None, headers: dict | None = None,
                  content_type: str = "application/fhir+json") -> None:
            raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _bearer_ok(self) -> bool:
            header = self.headers.get("Authorization", "")
            return header.startswith("Bearer ") and header[7:] in ehr.access_tokens

        def do_GET(self):
            ehr.requests.append(("GET", self.path, dict(self.headers)))
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            if path == "/fhir/.well-known/smart-configuration":
                if ehr.discovery == "well-known":
                    return self._send(200, ehr.smart_configuration(), content_type="application/json")
                return self._send(404, _operation_outcome("not-found", "no SMART configuration"))
            if path == "/fhir/metadata":
                if ehr.discovery == "none":
                    return self._send(404, _operation_outcome("not-found", "no metadata"))
                return self._send(200, ehr.capability_statement())
            if path == "/auth/authorize":
                return self._authorize(query)
            if path.startswith("/fhir/"):
                return self._fhir_read(path[len("/fhir/"):], query)
            return self._send(404, _operation_outcome("not-found", path))

        def _authorize(self, query: dict) -> None:
            params = {k: v[0] for k, v in query.items()}
            ehr.authorize_requests.append(params)
            problems = []
            if params.get("response_type") != "code":
                problems.append("response_type")
            if params.get("client_id") != ehr.client_id:
                problems.append("client_id")
            if params.get("aud") != ehr.iss:
                problems.append("aud")
            if params.get("code_challenge_method") != "S256" or len(params.get("code_challenge", "")) != 43:
                problems.append("pkce")
            if not params.get("state") or not params.get("redirect_uri") or not params.get("scope"):
                problems.append("state/redirect_uri/scope")
            if problems:
                return self._send(400, f"bad authorize request: {problems}".encode(), content_type="text/plain")
            redirect = params["redirect_uri"]
            if ehr.authorize_mode == "deny":
                target = redirect + "?" + urlencode({"error": "access_denied", "state": params["state"],
                                                     "error_description": "The user declined."})
                return self._send(302, headers={"Location": target})
            code = "code-" + secrets.token_urlsafe(16)
            challenge = params["code_challenge"]
            if ehr.corrupt_challenge:
                challenge = pkce_challenge("a-verifier-the-app-never-had-" + secrets.token_urlsafe(16))
            ehr.codes[code] = {"challenge": challenge, "redirect_uri": redirect, "scope": params["scope"],
                               "launch": params.get("launch"), "used": False}
            target = redirect + "?" + urlencode({"code": code, "state": params["state"]})
            return self._send(302, headers={"Location": target})

        def _fhir_read(self, rest: str, query: dict) -> None:
            if ehr.fhir_status:
                return self._send(ehr.fhir_status, _operation_outcome("exception", "the server is unwell"))
            if not self._bearer_ok():
                return self._send(401, _operation_outcome("login", "a valid bearer token is required"))
            segments = [unquote(s) for s in rest.split("/")]
            if segments == ["Patient", PATIENT_ID]:
                return self._send(200, ehr.prefetch["patient"])
            if len(segments) == 2 and segments[0] == "Practitioner":
                found = ehr.practitioners.get(segments[1])
                return self._send(200, found) if found else self._send(404, _operation_outcome("not-found", rest))
            if len(segments) == 2 and segments[0] == "PractitionerRole":
                found = next((r for r in ehr.practitioner_roles if r["id"] == segments[1]), None)
                return self._send(200, found) if found else self._send(404, _operation_outcome("not-found", rest))
            if segments == ["PractitionerRole"]:
                wanted = query.get("practitioner", [""])[0]
                roles = [r for r in ehr.practitioner_roles if r["practitioner"]["reference"] == wanted]
                return self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(roles),
                                        "entry": [{"resource": r} for r in roles]})
            if len(segments) == 2 and segments[0] == "Medication":
                found = ehr.medications.get(segments[1])
                return self._send(200, found) if found else self._send(404, _operation_outcome("not-found", rest))
            if len(segments) == 2 and segments[0] == "MedicationRequest":
                order = ehr.orders.get(segments[1])
                if order is None:
                    return self._send(404, _operation_outcome("not-found", "no such MedicationRequest"))
                return self._send(200, order)
            if len(segments) == 1 and segments[0] in SEARCH_KEYS:
                if query.get("patient") != [PATIENT_ID]:
                    return self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []})
                return self._send(200, ehr.prefetch[SEARCH_KEYS[segments[0]]])
            return self._send(404, _operation_outcome("not-found", rest))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            ehr.requests.append(("POST", self.path, dict(self.headers)))
            path = urlsplit(self.path).path
            if path == "/auth/token":
                return self._token(raw)
            if path == "/fhir/DocumentReference":
                if not self._bearer_ok():
                    return self._send(401, _operation_outcome("login", "a valid bearer token is required"))
                if ehr.document_status != 201:
                    return self._send(ehr.document_status, _operation_outcome("invalid", "document refused"))
                document = json.loads(raw)
                ehr.documents.append(document)
                number = len(ehr.documents)
                return self._send(201, headers={
                    "Location": f"{ehr.iss}/DocumentReference/doc-{number}/_history/1"})
            if path == "/fhir/QuestionnaireResponse":
                if not self._bearer_ok():
                    return self._send(401, _operation_outcome("login", "a valid bearer token is required"))
                ehr.questionnaire_responses.append(json.loads(raw))
                number = len(ehr.questionnaire_responses)
                return self._send(201, headers={
                    "Location": f"{ehr.iss}/QuestionnaireResponse/qr-{number}/_history/1"})
            return self._send(404, _operation_outcome("not-found", path))

        def _id_token(self, scope: str) -> str:
            """An OpenID Connect id_token, signed with a key of the fake's own (the app trusts the
            token endpoint's TLS, not the signature, so any key does)."""
            claims = {"iss": ehr.base + "/auth", "sub": "user-1", "aud": ehr.id_token_audience or ehr.client_id,
                      "exp": int(time.time()) + 300, "iat": int(time.time())}
            if ehr.fhir_user and "fhirUser" in scope.split():
                claims["fhirUser"] = ehr.iss + "/" + ehr.fhir_user
            return jwt.encode(claims, secrets.token_hex(32), algorithm="HS256")

        def _token(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            headers = dict(self.headers)
            ehr.token_requests.append((form, headers))

            def refuse(error: str, status: int = 400):
                return self._send(status, {"error": error}, content_type="application/json")

            if form.get("grant_type") != "authorization_code":
                return refuse("unsupported_grant_type")
            if ehr.client_secret:
                if _basic_credentials(headers.get("Authorization", "")) != (ehr.client_id, ehr.client_secret) \
                        or "client_secret" in form:
                    return refuse("invalid_client", 401)
            elif form.get("client_id") != ehr.client_id or "Authorization" in headers:
                return refuse("invalid_client", 401)
            grant = ehr.codes.get(form.get("code", ""))
            if grant is None or grant["used"]:
                return refuse("invalid_grant")
            grant["used"] = True
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return refuse("invalid_grant")
            verifier = form.get("code_verifier", "")
            if not 43 <= len(verifier) <= 128 or pkce_challenge(verifier) != grant["challenge"]:
                return refuse("invalid_grant")
            body = {
                "access_token": "at-" + secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": ehr.expires_in,
                "scope": ehr.grant_scope if ehr.grant_scope is not None else grant["scope"],
                "patient": PATIENT_ID,
                "need_patient_banner": ehr.need_patient_banner,
                "id_token": self._id_token(grant["scope"]),
                "refresh_token": "rt-" + secrets.token_urlsafe(24),
            }
            if ehr.app_context is not None:
                body["appContext"] = ehr.app_context
            if ehr.fhir_context is not None:
                body["fhirContext"] = copy.deepcopy(ehr.fhir_context)
            ehr.issued.append(body)
            return self._send(200, body, headers={"Cache-Control": "no-store"}, content_type="application/json")

    return Handler
