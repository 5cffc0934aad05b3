"""The coverage card names the policy version the order's date chose and the policy file's digest
(docs/policies.md, "Versions"), through the order-sign hook; the command line names them too."""
from __future__ import annotations

import hashlib

import pytest

from service.policy.loader import DEFAULT_POLICY_DIR, load_policies
from service.wording import word
from service.wording.cli_text import render_text
from tests.fixtures import coverage, fhir_bundle, mecasermin_order, order_sign_request
from tests.cards.test_card_budgets import check_answer
from tests.policy.charts import laron_boy

SIGN = "/cds-services/mecasermin-order-sign"
AETNA = hashlib.sha256((DEFAULT_POLICY_DIR / "aetna-cpb-0711.yaml").read_bytes()).hexdigest()


def _aetna_card(client, authored: str) -> dict:
    order = mecasermin_order()
    order["authoredOn"] = authored
    body = order_sign_request(order=order)
    body["prefetch"]["coverage"] = fhir_bundle([coverage("Aetna Life Insurance Company")])
    response = client.post(SIGN, json=body)
    assert response.status_code == 200
    return next(c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "coverage-info")


@pytest.mark.parametrize("authored, version", [("2025-09-25", "pre-2025-09"), ("2025-09-26", "2025-09")])
def test_the_coverage_card_names_the_version_in_force_on_the_order_date(client, authored, version):
    card = _aetna_card(client, authored)
    line = card["detail"].splitlines()[1]
    assert line == f"Version {version} (order date {authored}) · sha256 {AETNA[:8]}"
    assert card["summary"].startswith("Prior authorization required") and "Aetna CPB 0711" in card["summary"]


def test_no_version_in_force_keeps_the_card_rules(client):
    order = mecasermin_order()
    order["authoredOn"] = "2023-11-30"                    # before Premera's policy took effect
    response = client.post(SIGN, json=order_sign_request(order=order))
    check_answer(response.get_json())                     # budgets; prior authorization stated as the CRD says
    card = next(c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "coverage-info")
    assert card["detail"].splitlines()[1].startswith("No policy version in force (order date 2023-11-30) · sha256 ")
    assert "versions on file: one version, from 2023-12-01. Ask the plan which criteria applied" in card["detail"]
    assert "✓" not in card["detail"] and "✗" not in card["detail"]   # no other version's checklist


def test_the_command_line_names_the_version_and_the_whole_digest():
    chart = laron_boy(coverage=False)
    chart.coverage("Aetna Life Insurance Company", plan="Aetna Choice POS II")
    text = render_text(word(chart.decide(load_policies(default_policy="fda-label"))))
    assert f"  version: Version pre-2025-09, in force on the order date 2025-03-03; file sha256 {AETNA}\n" in text
