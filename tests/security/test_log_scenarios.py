"""A day of traffic with every log captured at DEBUG: no token, JWT, patient id or name anywhere.

The records are checked raw (message, arguments, extra fields, exception text) before any
redaction, so the test proves the code does not log them, not that the filter hid them. The
formatted JSON lines and the SQLite audit/feedback files are checked too.
"""
from __future__ import annotations

import copy
import io
import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.logs import JsonFormatter, RedactionFilter
from tests.fixtures import order_select_request, order_sign_request
from tests.security.conftest import SELECT, SIGN
from tests.security.jwt_helpers import EHR_ISS, claims, ec_key, public_jwk, sign

PATIENT_ID = "smart-7f3c9a21e4"
FAMILY, GIVEN = "Okafor-Whitfield", "Tobiah"
MRN = "MRN-993177254"
BIRTH_DATE = "2020-05-14"
ACCESS_TOKEN = "at-Xq9vLr2mT8kZpW4nB6cY1dFh"
BASE_URL = "https://cds.example-health.org"


def personalise(body: dict) -> dict:
    """Put the distinctive patient into every place a patient id or name can appear."""
    text = json.dumps(body)
    text = text.replace('"p1"', json.dumps(PATIENT_ID)).replace("Patient/p1", f"Patient/{PATIENT_ID}")
    text = text.replace("Okafor", FAMILY).replace('"Tobi"', json.dumps(GIVEN)).replace("MRN-448812", MRN)
    return json.loads(text)


def with_fhir(body: dict, server: str) -> dict:
    body = copy.deepcopy(body)
    body["fhirServer"] = server
    body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mecasermin-cds", "patient": PATIENT_ID}
    return body


@pytest.fixture
def captured():
    """Every record at DEBUG, raw, plus the JSON lines the production handler would write."""
    records: list[logging.LogRecord] = []
    stream = io.StringIO()

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    root = logging.getLogger()
    keep = Keep(level=logging.DEBUG)
    json_handler = logging.StreamHandler(stream)
    json_handler.setFormatter(JsonFormatter())
    json_handler.addFilter(RedactionFilter())
    previous = root.level
    root.addHandler(keep)
    root.addHandler(json_handler)
    yield records, stream
    root.removeHandler(keep)
    root.removeHandler(json_handler)
    root.setLevel(previous)


def raw_text(record: logging.LogRecord) -> str:
    parts = [str(record.msg), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    parts.append(json.dumps({k: v for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")},
                            default=repr))
    return "\n".join(parts)


def test_no_secret_or_patient_data_in_logs_or_audit(make_app, fault_server, tmp_path, captured):
    records, stream = captured
    key = ec_key(ec.SECP384R1())
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(key, "ehr-1", "ES384")]}}]))
    database = tmp_path / "audit.sqlite3"
    app = make_app(log_level="DEBUG", auth_mode="optional", trusted_issuers_file=str(issuers),
                   public_base_url=BASE_URL, database_url=f"sqlite:///{database}",
                   fhir_allowlist=(fault_server.base + "/*",))
    logging.getLogger().setLevel(logging.DEBUG)
    client = app.test_client()

    def jwt_for(path: str) -> str:
        return sign(key, "ES384", "ehr-1", claims(aud=BASE_URL + path))

    jwts = []
    calls = [
        (SELECT, personalise(order_select_request()), True),
        (SIGN, personalise(order_sign_request()), True),
        (SELECT, with_fhir(personalise(order_select_request(prefetch=None)), fault_server.url("ok")), True),
        (SIGN, with_fhir(personalise(order_sign_request(prefetch=None)), fault_server.url("http-500")), True),
        (SELECT, with_fhir(personalise(order_select_request(prefetch=None)), fault_server.url("outcome")), False),
        (SELECT, with_fhir(personalise(order_select_request(prefetch=None)), fault_server.url("hang")), False),
        (SELECT, with_fhir(personalise(order_select_request(prefetch=None)),
                           "https://ehr.example-health.org/fhir/r4"), False),       # not allowlisted: 412
    ]
    statuses, select_cards = [], []
    for path, body, authenticated in calls:
        headers = {}
        if authenticated:
            jwts.append(jwt_for(path))
            headers["Authorization"] = f"Bearer {jwts[-1]}"
        response = client.post(path, json=body, headers=headers)
        statuses.append(response.status_code)
        if path == SELECT and response.status_code == 200:
            select_cards += [card["uuid"] for card in response.get_json()["cards"]]
    # Failures that carry patient data in the body, and a refused token.
    broken = personalise(order_select_request())
    broken["context"]["patientId"] = {"name": FAMILY, "id": PATIENT_ID}
    statuses.append(client.post(SELECT, json=broken).status_code)
    forged = sign(ec_key(ec.SECP384R1()), "ES384", "ehr-1", claims(aud=BASE_URL + SELECT))
    statuses.append(client.post(SELECT, json=personalise(order_select_request()),
                                headers={"Authorization": f"Bearer {forged}"}).status_code)
    feedback = {"feedback": [{"card": select_cards[0], "outcome": "overridden",
                              "overrideReason": {"reason": {"code": "family-declined", "display": "Family declined"},
                                                 "userComment": f"Spoke with {GIVEN} {FAMILY}'s mother"},
                              "outcomeTimestamp": "2026-11-21T10:15:00Z"}]}
    statuses.append(client.post(SELECT + "/feedback", json=feedback).status_code)
    assert statuses == [200, 200, 200, 200, 200, 200, 412, 400, 401, 200]
    assert fault_server.calls_for("ok") and any(PATIENT_ID in path for _, path, _ in fault_server.calls_for("ok"))

    secrets = {
        "access token": ACCESS_TOKEN, "patient id": PATIENT_ID, "family name": FAMILY, "given name": GIVEN,
        "MRN": MRN, "forged JWT": forged, "forged JWT payload": forged.split(".")[1],
    }
    for i, token in enumerate(jwts):
        secrets[f"JWT {i}"] = token
        secrets[f"JWT {i} signature"] = token.split(".")[2]
    # The scenario really logged: one access line per call, the FHIR fetches, the refused token.
    assert sum(1 for r in records if r.name == "service.access") == len(statuses)
    assert any(r.getMessage() == "FHIR fetch finished" for r in records)
    assert any(getattr(r, "reason", None) == "bad-signature" for r in records)
    for record in records:
        text = raw_text(record)
        for what, secret in secrets.items():
            assert secret not in text, f"{what} logged by {record.name}: {record.getMessage()[:200]}"
    output = stream.getvalue()
    for what, secret in secrets.items():
        assert secret not in output, f"{what} in the JSON log output"
    assert BIRTH_DATE not in output

    # The audit trail and stored feedback: hashed patient, no token, no JWT. (The clinician's free
    # text comment is stored as given: it is the feedback itself.)
    stored = b"".join(Path(str(database) + suffix).read_bytes()
                      for suffix in ("", "-wal") if Path(str(database) + suffix).exists())
    for what in ("access token", "patient id", "MRN") + tuple(k for k in secrets if k.startswith(("JWT", "forged"))):
        assert secrets[what].encode() not in stored, f"{what} stored in the database"
