"""Helpers for the DTR tests: demo charts, walking the adaptive questionnaire, answering its groups."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from service.dtr import next_question, questionnaire_package
from service.policy import load_policies
from tests.conftest import TODAY

PATIENTS = Path(__file__).resolve().parents[2] / "sandbox-config" / "patients"
EXPECTED = json.loads((PATIENTS / "expected.json").read_text())
POLICIES = load_policies(default_policy="fda-label")


COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def kept_assertion_id(answer: dict) -> str:
    """The coverage-assertion-id of a CRD answer followed by DTR (its questionnaire named), whose chart is kept."""
    (info,) = [{e["url"]: e for e in ext["extension"]} for a in answer["systemActions"]
               for ext in a["resource"]["extension"] if ext["url"] == COVERAGE_INFORMATION]
    assert "questionnaire" in info           # the answer is followed by DTR: its chart is kept
    return info["coverage-assertion-id"]["valueString"]


def demo_chart(patient_id: str) -> tuple[list[dict], dict]:
    """(chart, draft mecasermin order) of a demo patient: the resources `build_record` takes."""
    resources = [e["resource"] for e in json.loads((PATIENTS / f"{patient_id}.json").read_text())["entry"]]
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest" and r.get("status") == "draft")
    return [r for r in resources if r is not order], order


def answers(link: str, **values) -> list[dict]:
    """The QR items of a question group: {"value": {"valueDecimal": 6.5}, ...} by item id."""
    return [{"linkId": f"{link}.{item}", "answer": [answer]} for item, answer in values.items()]


def walk(chart, order, answer_for=lambda link: None, *, today=TODAY, limit=12):
    """Run the questionnaire to its end: (every response returned, the links of the groups asked)."""
    qr = questionnaire_package(chart, order, POLICIES, today)["entry"][1]["resource"]
    steps, asked = [copy.deepcopy(qr)], []
    while qr["status"] != "completed" and len(steps) < limit:
        qr = next_question(chart, order, POLICIES, qr, today)
        steps.append(copy.deepcopy(qr))
        last = qr["item"][-1]
        if last["linkId"].startswith("q-"):
            asked.append(last["linkId"])
            given = answer_for(last["linkId"])
            if given:
                last["item"] = given
    return steps, asked


def determination(qr: dict) -> str:
    group = qr["item"][-1]
    assert group["linkId"] == "determination"
    return group["item"][0]["answer"][0]["valueCoding"]["code"]
