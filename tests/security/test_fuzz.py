"""Fuzzing the HTTP API: schemathesis from the OpenAPI document, hypothesis mutations of
realistic hook calls, and hostile text in every chart field the cards quote. Zero 5xx; every answer
JSON of the documented shape; no markup, link or image from the chart in any card; time linear in
the text's size.

Budget (CI): about 3,000 schemathesis cases, 1,000 mutated hook calls and 300 hostile charts, under
four minutes on two cores. `CDS_FUZZ_SCALE=10` multiplies all for a longer local run.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from service.app import create_app
from service.settings import Settings
from tests.fixtures import (PATIENT_ID, _observation, condition, coverage, fhir_bundle, laron_prefetch,
                            mecasermin_order, order_select_request, order_sign_request, patient_resource)
from tests.security.card_markup import markup_problems, own_links
from tests.security.conftest import SELECT, SIGN, TODAY, assert_error_body, openapi_validator, response_problems

SCALE = max(1, int(os.environ.get("CDS_FUZZ_SCALE", "1")))
SCHEMATHESIS_EXAMPLES = 150 * SCALE      # per operation; hypothesis stops early on small input spaces
MUTATION_EXAMPLES = 1000 * SCALE
MINIMUM_CASES = 2000                      # both parts together, asserted at the end

CASES: Counter = Counter()


def _app():
    # In memory-backed /dev/shm when there is one: fsync per feedback row is not what is tested here.
    folder = Path(tempfile.mkdtemp(prefix="cds-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    database = folder / "cds.sqlite3"
    # No FHIR server may be called: fuzzing exercises validation, the pipeline and the cards.
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{database}", log_level="WARNING",
                                       fhir_allowlist=()), today=lambda: TODAY)
    return app, database


APP, _DATABASE = _app()
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=SCHEMATHESIS_EXAMPLES)


def teardown_module(module):
    shutil.rmtree(_DATABASE.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- documented shapes

def check_documented_shape(path: str, method: str, status: int, content_type: str, data: bytes) -> None:
    assert status < 500, f"{method} {path} → {status}: {data[:300]!r}"
    if method.upper() in ("OPTIONS", "HEAD") and status in (200, 204) and not data:
        return                  # CORS preflight / automatic OPTIONS and HEAD: headers only, no body
    if path.startswith("/dtr/"):     # FHIR operations (docs/dtr.md): FHIR JSON, a 405 included
        assert content_type.split(";")[0] == "application/fhir+json", f"{method} {path} → {content_type}"
        body = json.loads(data)
        assert body["resourceType"] == ("OperationOutcome" if status >= 400 else "Parameters"), (status, body)
        return
    assert content_type.split(";")[0] == "application/json", f"{method} {path} → {content_type}"
    body = json.loads(data)
    if status >= 400:
        errors = list(openapi_validator("Error").iter_errors(body))
        assert not errors, (status, body, errors[0].message)
    elif path.startswith("/cds-services/") and not path.endswith("/feedback"):
        assert response_problems(body) == [], body
    elif path.endswith("/feedback"):
        assert isinstance(body.get("stored"), int)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=SCHEMATHESIS_EXAMPLES)
def test_api_from_openapi(case):
    response = case.call()
    CASES["schemathesis"] += 1
    CASES[f"schemathesis {response.status_code}"] += 1
    # Not positive_data_acceptance / negative_data_rejection: the service validates with its own,
    # stricter JSON Schemas (and ignores unknown fields, as CDS Hooks requires), so the OpenAPI
    # request schemas describe rather than decide acceptance.
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                             content_type_conformance, response_schema_conformance])
    check_documented_shape(case.formatted_path, case.method, response.status_code, _content_type(response),
                           response.content)


def _content_type(response) -> str:
    for name, value in response.headers.items():
        if name.lower() == "content-type":
            return value[0] if isinstance(value, list) else value
    return ""


# ----------------------------------------------------------------------------- mutated hook calls

def _sandbox_shaped() -> dict:
    """The public sandbox's quirks: no Bundle.type, single objects for arrays, `{pill}` units."""
    body = order_select_request()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    del body["context"]["draftOrders"]["type"]
    order["reasonCode"] = order["reasonCode"][0]
    order["category"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                     "code": "outpatient"}]}
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"] = "{pill}"
    return body


def _other_drug() -> dict:
    body = order_sign_request(prefetch=None)
    body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "text": "somatropin 5 MG/ML Injectable Solution"}
    return body


def _outside_allowlist() -> dict:
    body = order_select_request(prefetch={"patient": patient_resource()})
    body["fhirServer"] = "https://ehr.example-health.org/fhir/r4"
    body["fhirAuthorization"] = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds"}
    return body


def _two_orders() -> dict:
    body = order_sign_request()
    body["context"]["draftOrders"]["entry"].append({"resource": mecasermin_order("mr-2", dose_mg=2.5, per_day=3)})
    return body


def _screening_prefetch() -> dict:
    full = laron_prefetch()
    return {"patient": full["patient"], "growth": full["observations"], "medications": full["medications"]}


def _chart_opened() -> dict:
    """patient-view for a short child with no mecasermin on file: the screening service's case."""
    return {"hook": "patient-view", "hookInstance": "6c1a9d8e-2f4b-4a67-9b0e-51d3c2f7e8a4",
            "context": {"userId": "Practitioner/dr-7", "patientId": "p1", "encounterId": "enc-1"},
            "prefetch": _screening_prefetch()}


def _empty_order_entry() -> dict:
    """The sandbox's Rx View before a drug is chosen: a draft MedicationRequest with no medication."""
    body = order_select_request(prefetch=_screening_prefetch())
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    for name in ("medicationCodeableConcept", "dosageInstruction", "dispenseRequest", "reasonCode"):
        order.pop(name, None)
    return body


SEEDS = [
    ("/cds-services/mecasermin-screen", _chart_opened()),
    ("/cds-services/mecasermin-screen-order-entry", _empty_order_entry()),
    (SELECT, order_select_request()),
    (SIGN, order_sign_request()),
    (SELECT, _sandbox_shaped()),
    (SIGN, _other_drug()),
    (SELECT, _outside_allowlist()),
    (SIGN, _two_orders()),
]

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 64), max_value=2 ** 64),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", "mecasermin", "Increlex", "MedicationRequest/mr-1", "Patient/p1", "2026-02-30",
                     "1900-01-01", "9999-12-31T23:59:59Z", "-1", "NaN", "\u0000", "\ud7ff\ue000", "{pill}",
                     "mg/kg", "E34.321", "http://loinc.org", "8302-2", "Bundle", "OperationOutcome", "x" * 5000]),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=8)


def _locations(document) -> list[tuple]:
    """(container, key) for every value in the document."""
    found, todo = [], [document]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            found.append((node, key))
            if isinstance(value, (dict, list)):
                todo.append(value)
    return found


@st.composite
def mutated_calls(draw):
    path, seed = draw(st.sampled_from(SEEDS))
    body = copy.deepcopy(seed)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        locations = _locations(body)
        if not locations:
            break
        container, key = locations[draw(st.integers(min_value=0, max_value=len(locations) - 1))]
        action = draw(st.sampled_from(["delete", "replace", "retype", "duplicate", "stringify"]))
        value = container[key]
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(json_value)
        elif action == "retype":
            container[key] = draw(st.sampled_from([None, {}, [], "", 0, -1, 1e308, True, [value], {"value": value}]))
        elif action == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))
        elif action == "duplicate" and isinstance(value, list) and value:
            value.extend(copy.deepcopy(value) * draw(st.integers(min_value=1, max_value=20)))
        else:
            container[key] = json.dumps(value)
    return path, body


@given(mutated_calls())
@settings(max_examples=MUTATION_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
def test_mutated_hook_calls(call):
    path, body = call
    response = APP.test_client().post(path, data=json.dumps(body), content_type="application/json")
    CASES["mutation"] += 1
    CASES[f"mutation {response.status_code}"] += 1
    assert response.status_code in (200, 400, 412, 413), (response.status_code, response.data[:300])
    check_documented_shape(path, "POST", response.status_code, response.content_type, response.data)
    if response.status_code != 200:
        assert_error_body(response)


@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=10_000), st.binary(min_size=1, max_size=8))
@settings(max_examples=200 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_corrupted_bytes(seed, position, garbage):
    """Raw byte corruption: broken UTF-8, cut strings, stray brackets. Always a JSON 4xx or a 200."""
    path, body = seed
    raw = bytearray(json.dumps(body).encode())
    at = position % len(raw)
    raw[at:at + len(garbage)] = garbage
    response = APP.test_client().post(path, data=bytes(raw), content_type="application/json")
    CASES["bytes"] += 1
    assert response.status_code in (200, 400, 412, 413), (response.status_code, response.data[:300])
    check_documented_shape(path, "POST", response.status_code, response.content_type, response.data)


# ----------------------------------------------------------------------------- hostile chart text

HOSTILE_PIECES = [
    "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "<script>alert(1)</script>", "</td></tr></table>",
    "[renew](javascript:alert(1))", "[login](https://phish.example/login)", "![](https://tracker.example/p.gif)",
    "https://phish.example/a", "www.phish.example", "help@phish.example", "<https://phish.example>",
    "**", "_", "`", "~~", "|", "\\", "&lt;b&gt;", "&#106;", "# ", "> ", "1. ", "- ", "---", "\n\n", "\r\n    ",
    "\u0000", "\u0007", "\u001b[31m", "\u007f", "\u0085", "\u202e", "\u2066", "\ufeff", "\U0001F600", "\ud800",
    "no cancer ", "closed growth plates ", "not detected ", "[", "](", ")",
]


@st.composite
def hostile_texts(draw):
    """Text built of markup, links, controls and surrogates, sometimes nested or repeated at length."""
    pieces = draw(st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=8)), min_size=1, max_size=12))
    text = "".join(pieces)
    shape = draw(st.sampled_from(["plain", "nested", "long"]))
    if shape == "nested":
        depth = draw(st.integers(min_value=2, max_value=200))
        text = "[" * depth + text + "](javascript:x)" * depth
    elif shape == "long":
        # At least 100 repeats, up to about 20,000 characters (a text of many long pieces: 100 repeats).
        text = text * draw(st.integers(min_value=100, max_value=max(100, 20_000 // max(1, len(text)))))
    return text


# Each chart field a card quotes, with the words that make a card quote it.
QUOTED_FIELDS = ("condition", "malignancy", "reason", "payer", "epiphyses", "note", "allergy", "medication",
                 "dosage", "unit")


def hostile_chart(texts: dict[str, str]) -> tuple[str, dict]:
    prefetch = laron_prefetch()
    prefetch["conditions"] = fhir_bundle([
        condition("c1", "E34.321", "Primary IGF-1 deficiency " + texts["condition"]),
        condition("c2", "local-9", "carcinoma " + texts["malignancy"], system="http://hospital.example.org/cs")])
    plates = _observation("ep1", "2026-08-20", "85151-9", "Bone age", None)
    plates.pop("valueQuantity", None)
    plates["valueString"] = "closed growth plates " + texts["epiphyses"]
    plates["note"] = [{"text": texts["note"]}]
    prefetch["observations"]["entry"].append({"resource": plates})
    prefetch["coverage"] = fhir_bundle([coverage(payer="Acme Health " + texts["payer"])])
    prefetch["allergies"] = fhir_bundle([{
        "resourceType": "AllergyIntolerance", "id": "al1", "patient": {"reference": f"Patient/{PATIENT_ID}"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "code": {"text": "mecasermin " + texts["allergy"]}}])
    prefetch["medications"] = fhir_bundle([{
        "resourceType": "MedicationRequest", "id": "med1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "prednisone 5 mg tablet " + texts["medication"]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}}])
    order = mecasermin_order(dose_mg=2.5, reason=("E34.321", "Laron syndrome " + texts["reason"]))
    order["dosageInstruction"][0]["text"] = "2.5 mg " + texts["dosage"]
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"] = texts["unit"][:40] or "mg"
    hook = order_sign_request if len(texts["dosage"]) % 2 else order_select_request
    return (SIGN if hook is order_sign_request else SELECT), hook(prefetch=prefetch, order=order)


OWN_LINKS = own_links()
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@given(st.fixed_dictionaries({field: hostile_texts() for field in QUOTED_FIELDS}))
@settings(max_examples=300 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_hostile_text_in_every_quoted_chart_field(texts):
    path, body = hostile_chart(texts)
    data = json.dumps(body)
    started = time.perf_counter()
    response = APP.test_client().post(path, data=data, content_type="application/json")
    took = time.perf_counter() - started
    CASES["hostile"] += 1
    CASES[f"hostile {response.status_code}"] += 1
    check_documented_shape(path, "POST", response.status_code, response.content_type, response.data)
    # A lone surrogate in the texts (not "\\ud800" in the JSON: U+10000 is written "\\ud800\\udc00").
    if LONE_SURROGATE.search(json.dumps(body, ensure_ascii=False)):
        assert response.status_code == 400 and "surrogate" in assert_error_body(response)["message"]
        return
    assert response.status_code == 200, response.data[:300]
    # Linear: about 20 ms per 100 kB of chart text on an idle core plus the fixed cost of a call; the
    # bound is generous for a loaded CI machine and still below what quadratic scans took (31–52 s
    # for 164 kB). tests/security/test_linear_text.py measures linearity itself.
    assert took < 10.0 + len(data) / 100_000, (took, len(data))
    for card in response.get_json()["cards"]:
        problems = markup_problems(card, OWN_LINKS)
        assert problems == [], (problems, card["detail"][:2000])


def test_budget_was_spent():
    if not CASES["schemathesis"] or not CASES["mutation"]:
        pytest.skip("run the whole module: the budget is counted across its tests")
    print("fuzz cases:", dict(sorted(CASES.items())))
    assert CASES["schemathesis"] + CASES["mutation"] + CASES["bytes"] >= MINIMUM_CASES, CASES
    # The fuzzers reached the interesting code, not only the validator.
    assert CASES["mutation 200"] > 100 and CASES["schemathesis 200"] > 100, CASES
    assert CASES["hostile 200"] > 100 and CASES["hostile 400"] > 10, CASES
