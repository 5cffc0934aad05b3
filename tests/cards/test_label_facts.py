"""Label and billing facts live only in label.yaml and the policy files: a copy of label.yaml with
other facts (a different maximum, concentration, starting range or source) changes the cards and the
screening card, with no Python change; the CRD billing code is the policy's own HCPCS."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from service.app import create_app
from service.policy.loader import DEFAULT_LABEL_FILE, DEFAULT_POLICY_DIR, load_policies
from service.policy.tests_to_order import CRITERION_TESTS, TESTS
from tests.cards.answers import ORDER_SERVICES, PATIENTS, SCREEN_SERVICE, demo_resources, order_body, screen_body
from tests.conftest import CheckingClient
from tests.integration.test_demo_bundles import TODAY

LABEL_URL = "https://label.example.org/increlex-2027.pdf"


def label_copy(tmp_path: Path, **dosing) -> Path:
    data = yaml.safe_load(DEFAULT_LABEL_FILE.read_text(encoding="utf-8"))
    data["dosing"].update(dosing)
    data["source"] = {"title": "Increlex label, 2027 revision", "url": LABEL_URL}
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def client_with(settings, label_file: Path | None = None) -> CheckingClient:
    app = create_app(settings, today=lambda: TODAY)
    if label_file is not None:
        app.extensions["mecasermin"].policies = load_policies(DEFAULT_POLICY_DIR, label_file=label_file,
                                                              default_policy=settings.default_policy)
    return CheckingClient(app.test_client())


def cards(client, patient: str, hook: str = "order-select") -> dict:
    body = order_body(demo_resources(PATIENTS / f"{patient}.json"), hook)
    return {c["source"]["topic"]["code"]: c for c in client.post(ORDER_SERVICES[hook], json=body).get_json()["cards"]}


def test_a_different_maximum_in_label_yaml_changes_the_dose_card(settings, tmp_path):
    shipped = cards(client_with(settings), "demo-overdose")["off-guideline"]
    assert shipped["indicator"] == "critical" and "0.12 mg/kg" in shipped["summary"]
    changed = cards(client_with(settings, label_copy(tmp_path, maximum_mg_per_kg=0.25)), "demo-overdose")
    dose = changed.get("off-guideline")
    # 0.196 mg/kg is under a 0.25 maximum: no longer critical, and the 0.12 of the shipped label is gone.
    assert dose is None or (dose["indicator"] != "critical" and "0.12" not in dose["summary"] + dose["detail"])


def test_a_different_concentration_changes_how_a_dose_in_ml_is_read(settings, tmp_path):
    # demo-laron-snomed orders 0.06 mL: 0.6 mg at 10 mg/mL, 1.2 mg at 20 mg/mL (0.094 mg/kg: above the start range).
    assert "off-guideline" not in cards(client_with(settings), "demo-laron-snomed")
    dose = cards(client_with(settings, label_copy(tmp_path, concentration_mg_per_ml=20)), "demo-laron-snomed")["off-guideline"]
    assert "starting range" in dose["summary"] and "1.2 mg per dose (ordered as 0.06 mL)" in dose["detail"]
    assert "mL of 20 mg/mL" in dose["detail"]


def test_the_label_source_and_starting_range_reach_every_card(settings, tmp_path):
    client = client_with(settings, label_copy(tmp_path, start_range_mg_per_kg=[0.05, 0.1]))
    safety = cards(client, "demo-malignancy-history")["contraindication"]
    assert safety["source"]["url"] == LABEL_URL and safety["links"][0]["url"] == LABEL_URL
    coverage = cards(client, "demo-laron-icd10")["coverage-info"]
    assert LABEL_URL in [link.get("url") for link in coverage["links"]]
    screen = client.post(SCREEN_SERVICE, json=screen_body(demo_resources(PATIENTS / "demo-laron-icd10.json")))
    (card,) = screen.get_json()["cards"]
    assert "0.05–0.1 mg/kg starting range" in card["detail"] and card["source"]["url"] == LABEL_URL
    assert "0.04" not in card["detail"]


def test_the_crd_billing_code_is_the_policys_own(settings, tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    for path in DEFAULT_POLICY_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == "premera-mecasermin":
            text = text.replace("hcpcs: J2170", "hcpcs: J3490").replace(
                "hcpcs_display: Injection, mecasermin, 1 mg", "hcpcs_display: Unclassified drugs")
        (folder / path.name).write_text(text, encoding="utf-8")
    app = create_app(settings, today=lambda: TODAY)
    app.extensions["mecasermin"].policies = load_policies(folder, default_policy=settings.default_policy)
    body = order_body(demo_resources(PATIENTS / "demo-laron-icd10.json"), "order-sign")
    answer = CheckingClient(app.test_client()).post(ORDER_SERVICES["order-sign"], json=body).get_json()
    (extension,) = answer["systemActions"][0]["resource"]["extension"][-1:]
    billing = next(p for p in extension["extension"] if p["url"] == "billingCode")
    assert billing["valueCoding"]["code"] == "J3490" and billing["valueCoding"]["display"] == "Unclassified drugs"


def test_the_missing_test_ids_are_one_list():
    schema = json.loads((DEFAULT_POLICY_DIR.parent / "policy.schema.json").read_text(encoding="utf-8"))
    assert [v for v in schema["$defs"]["missing_test"]["enum"] if v is not None] == list(CRITERION_TESTS)
    assert set(CRITERION_TESTS) < set(TESTS)
