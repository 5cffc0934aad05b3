"""DTR decides as the hook did when the prescriber is known only from the hook's `context.userId`: the
chart snapshot kept at CRD time keeps the user (sealed with the chart), and the questionnaire's record
reads it like the hook's. The payer is the illustrative third payer with a prescriber-specialty clause
(docs/examples/policies/quillfeather-mecasermin.yaml), given a height question for this test."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.app import create_app
from service.policy.loader import DEFAULT_POLICY_DIR
from service.settings import Settings
from tests.conftest import TODAY
from tests.fixtures import coverage, fhir_bundle, order_select_request

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policies" / "quillfeather-mecasermin.yaml"
SIGN = "/cds-services/mecasermin-order-sign"
PACKAGE = "/dtr/Questionnaire/$questionnaire-package"
NEXT = "/dtr/Questionnaire/$next-question"
INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
HEIGHT_QUESTION = """
questions:
  height:
    text: Height measured in the last 12 months
    items:
      - {id: value, text: Height, type: decimal, unit: {code: cm, display: cm}, required: true}
      - {id: date, text: Date measured, type: date, required: true}
    record:
      observation: {code: {system: "http://loinc.org", code: 8302-2, display: Body height}, value: value, date: date}
"""


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder, ignore=shutil.ignore_patterns("*.md"))
    (folder / EXAMPLE.name).write_text(EXAMPLE.read_text() + HEIGHT_QUESTION)
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/cds.sqlite3", policy_dir=str(folder))
    return create_app(settings, today=lambda: TODAY)


def _quill_order_sign() -> dict:
    """order-sign for an order that names no requester: the prescriber is the hook's user (dr-7, a
    pediatric endocrinologist, with their PractitionerRole prefetched)."""
    body = order_select_request(hook="order-sign")
    body["context"]["draftOrders"]["entry"][0]["resource"].pop("requester")
    assert body["context"]["userId"] == "Practitioner/dr-7"
    body["prefetch"]["coverage"] = fhir_bundle([coverage("Quillfeather Mutual Health")])
    return body


def _crd_without_heights(client) -> tuple[dict, str]:
    """The order-sign call with no height on file, so documentation is needed."""
    body = _quill_order_sign()
    body["prefetch"]["observations"] = fhir_bundle([e["resource"] for e in body["prefetch"]["observations"]["entry"]
                                                    if e["resource"]["code"]["coding"][0]["code"] != "8302-2"])
    answer = client.post(SIGN, json=body).get_json()
    (info,) = [{e["url"]: e for e in ext["extension"]} for a in answer["systemActions"]
               for ext in a["resource"]["extension"] if ext["url"] == INFO]
    assert "doc-needed" in info and "questionnaire" in info
    return body, info["coverage-assertion-id"]["valueString"]


def _step(client, qr) -> dict:
    response = client.post(NEXT, json={"resourceType": "Parameters", "parameter": [{"name": "in", "resource": qr}]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["parameter"][0]["resource"]


def test_the_snapshot_keeps_the_hooks_user_and_dtr_agrees_with_the_hook(app):
    client = app.test_client()
    body, assertion = _crd_without_heights(client)
    snapshots = app.extensions["mecasermin"].snapshots
    assert snapshots.recall(assertion).user == "Practitioner/dr-7"
    coverage_resource = body["prefetch"]["coverage"]["entry"][0]["resource"]
    package = client.post(PACKAGE, json={"resourceType": "Parameters", "parameter": [
        {"name": "coverage", "resource": coverage_resource}, {"name": "context", "valueString": assertion}]})
    assert package.status_code == 200, package.get_json()
    qr = _step(client, package.get_json()["parameter"][0]["resource"]["entry"][1]["resource"])
    settled = {item["linkId"]: item for item in qr["item"][0]["item"]}
    assert settled["on-file.prescriber"]["answer"][0]["valueCoding"]["code"] == "met"     # as the hook read it
    assert qr["item"][-1]["linkId"] == "q-height"
    # The height the chart had (100.4 cm, SDS below −2.5): DTR now meets the criteria, as the hook does
    # with that height on file — the prescriber clause met through the hook's user, not left unknown.
    qr["item"][-1]["item"] = [{"linkId": "q-height.value", "answer": [{"valueDecimal": 100.4}]},
                              {"linkId": "q-height.date", "answer": [{"valueDate": "2026-10-20"}]}]
    done = _step(client, qr)
    assert done["status"] == "completed"
    assert done["item"][-1]["item"][0]["answer"][0]["valueCoding"]["code"] == "meets-criteria"
    client.post(SIGN, json=_quill_order_sign())
    rows = app.extensions["mecasermin"].store.query("SELECT determination FROM audit ORDER BY rowid")
    assert [r[0] for r in rows] == ["documentation-needed", "meets-criteria"]
