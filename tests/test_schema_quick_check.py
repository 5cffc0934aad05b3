"""The request schemas' quick check (service/validation.py) only ever vouches for bodies jsonschema finds
valid: any body it is not sure of gets jsonschema's errors, so every 400 names the same paths as before."""
from __future__ import annotations

import copy
import random

import pytest

from service.validation import SCHEMA_DIR, _plainly_valid, validator
from tests.fixtures import laron_prefetch, order_select_request, order_sign_request

SCHEMAS = sorted(path.name for path in SCHEMA_DIR.glob("*.schema.json")
                 if path.name.startswith(("cds-request", "order-", "patient-view", "feedback", "draft-orders")))

# Values a hostile or careless EHR sends in place of the right one.
ODD_VALUES = [None, True, False, 0, 1, -1, 1.0, 2.5, "", " ", "x" * 201, "Practitioner/dr-7\n", "Patient/p1",
              "..", ".", "p1\n", "ftp://ehr/fhir", "https://ehr.example/fhir", "http://a b", "MAC", "bearer",
              "Bundle", "bundle", "2026-11-21T10:00:00Z", "2026-99-99Tjunk", "accepted", "overridden",
              "Practitioner/" + "a" * 65, "MedicationRequest/mr-1", "١٢٣", [], [1], ["x"], {}, {"resourceType": 1},
              {"resourceType": "Patient"}, {"resourceType": "OperationOutcome"}]


def _bodies():
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z",
                              "overrideReason": {"reason": {"system": "s", "code": "c", "display": "d"},
                                                 "userComment": "no"}}]}
    select, sign = order_select_request(prefetch=laron_prefetch()), order_sign_request()
    select["fhirServer"] = "https://ehr.example/fhir"
    select["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "s",
                                   "subject": "s"}
    return {"cds-request.schema.json": [select, sign], "order-select-context.schema.json": [select["context"]],
            "order-sign-context.schema.json": [sign["context"]], "feedback.schema.json": [feedback],
            "patient-view-context.schema.json": [{"userId": "Practitioner/dr-7", "patientId": "p1"}],
            "draft-orders.schema.json": [select["context"]["draftOrders"]]}


def _places(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, path + (index,))


def _mutate(body, rng: random.Random):
    body = copy.deepcopy(body)
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(list(_places(body)))
        if not path:
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        action = rng.random()
        if action < 0.25 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.35 and isinstance(parent, dict):
            parent[rng.choice(["extra", "fhirAuthorization", "prefetch", "encounterId", "type", "acceptedSuggestions"])] = \
                rng.choice(ODD_VALUES)
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return body


def test_every_schema_the_service_checks_is_covered():
    assert set(_bodies()) == set(SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_valid_bodies_are_vouched_for(name):
    check = _plainly_valid(name)
    for body in _bodies()[name]:
        assert not list(validator(name).iter_errors(body))
        if name != "feedback.schema.json":      # its if/then/not is left to jsonschema
            assert check(body)


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_quick_check_never_vouches_for_an_invalid_body(name):
    rng, check, full = random.Random(19), _plainly_valid(name), validator(name)
    vouched = refused = 0
    for _ in range(1500):
        body = _mutate(rng.choice(_bodies()[name]), rng)
        invalid = bool(next(iter(full.iter_errors(body)), None))
        if check(body):
            assert not invalid, body
            vouched += 1
        refused += invalid
    assert refused > 100 and (vouched > 100 or name == "feedback.schema.json")
