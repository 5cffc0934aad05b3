"""The illustrative third payer (docs/examples/policies/quillfeather-mecasermin.yaml) through the HTTP
service: loaded from the policy folder setting, chosen by a Coverage naming it, its version in force on
the order date applied, and its prescriber clause read from the prefetch or fetched from the FHIR server."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import responses

from service.app import create_app
from service.policy.loader import DEFAULT_POLICY_DIR
from service.settings import Settings
from tests.conftest import TODAY, CheckingClient
from tests.fixtures import coverage, fhir_bundle, order_select_request, practitioner_resource, practitioner_role

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policies" / "quillfeather-mecasermin.yaml"
SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}
BASE = "http://127.0.0.1:9341/fhir"


@pytest.fixture
def client(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder, ignore=shutil.ignore_patterns("*.md"))
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/cds.sqlite3", policy_dir=str(folder))
    app = create_app(settings, today=lambda: TODAY)
    return CheckingClient(app.test_client()), app.extensions["mecasermin"].store


def quill_request(hook: str, **prefetch):
    body = order_select_request(hook=hook)
    body["prefetch"]["coverage"] = fhir_bundle([coverage("Quillfeather Mutual Health")])
    body["prefetch"].update(prefetch)
    return body


def coverage_card(result: dict) -> dict:
    return next(c for c in result["cards"] if c["source"]["topic"]["code"] == "coverage-info")


def covered(result: dict) -> list[str]:
    return [p["valueCode"] for a in result.get("systemActions", []) for e in a["resource"]["extension"]
            for p in e["extension"] if p["url"] == "covered"]


@pytest.mark.parametrize("hook", SERVICES)
def test_the_third_payer_is_chosen_and_applied_through_both_hooks(client, hook):
    http, store = client
    result = http.post(SERVICES[hook], json=quill_request(hook)).get_json()
    card = coverage_card(result)
    assert "Quillfeather" in card["summary"] + card["detail"], card
    assert "Version 2026-01 (order date 2026-11-21)" in card["detail"]
    assert card["indicator"] == "info"
    assert covered(result) == ["covered"]
    (row,) = store.query("SELECT policy, policy_version, determination FROM audit")
    assert row == ("quillfeather-mecasermin", "2026-01", "meets-criteria")


@pytest.mark.parametrize("hook", SERVICES)
def test_a_prescriber_of_another_specialty_needs_the_consultation_documented(client, hook):
    http, store = client
    roles = fhir_bundle([practitioner_role(code="208000000X", display="Pediatrics")])
    result = http.post(SERVICES[hook], json=quill_request(hook, prescriberroles=roles)).get_json()
    assert coverage_card(result)["indicator"] == "warning"
    assert covered(result) == ["conditional"]
    (row,) = store.query("SELECT determination FROM audit")
    assert row[0] == "documentation-needed"


@responses.activate
def test_the_prescriber_is_fetched_when_not_prefetched(client):
    http, store = client
    body = quill_request("order-sign")
    del body["prefetch"]["prescriber"], body["prefetch"]["prescriberroles"]
    body.update(fhirServer=BASE, fhirAuthorization={"access_token": "t0k", "token_type": "Bearer", "expires_in": 300,
                                                     "scope": "user/*.read", "subject": "cds-service"})
    responses.add(responses.GET, f"{BASE}/Practitioner/dr-7", json=practitioner_resource())
    responses.add(responses.GET, re.compile(rf"{BASE}/PractitionerRole\?practitioner=dr-7&.*"),
                  json=fhir_bundle([practitioner_role()]))
    result = http.post(SERVICES["order-sign"], json=body).get_json()
    assert covered(result) == ["covered"]
    asked = sorted(c.request.url.split("/fhir/")[1] for c in responses.calls)
    assert asked == ["Practitioner/dr-7", "PractitionerRole?practitioner=dr-7&_count=50"]


def test_a_prescriber_that_cannot_be_read_matters_only_under_a_prescriber_clause(client):
    http, store = client
    for payer, expected in (("Premera Blue Cross", "meets-criteria"), ("Quillfeather Mutual Health", "documentation-needed")):
        body = order_select_request(hook="order-sign")
        body["prefetch"]["coverage"] = fhir_bundle([coverage(payer)])
        del body["prefetch"]["prescriber"], body["prefetch"]["prescriberroles"]      # and no FHIR server
        http.post(SERVICES["order-sign"], json=body)
    rows = store.query("SELECT policy, determination FROM audit ORDER BY rowid")
    assert [r[1] for r in rows] == ["meets-criteria", "documentation-needed"]
