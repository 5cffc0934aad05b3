"""`mecasermin-cds evaluate`: JSON and text output, and errors as one line with exit status 2."""
from __future__ import annotations

import json
import time

import pytest

from service.cli import main as cli_main
from service.policy import evaluate
from service.policy.command import main
from tests.policy.charts import TODAY, laron_boy


@pytest.fixture
def bundle_file(tmp_path):
    chart = laron_boy()
    chart.drop("Observation/ba-2024-12")
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(chart.bundle()))
    return path


def test_json_output(bundle_file, capsys):
    assert main(["evaluate", str(bundle_file), "--today", TODAY.isoformat()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"]["id"] == "premera-mecasermin"
    assert out["determination"] == "documentation-needed"
    assert out["missing_tests"] == ["bone-age"]
    assert out["dose"]["order_reference"] == "MedicationRequest/draft-increlex"   # the draft found in the bundle
    assert out["evaluated_on"] == "2025-03-03"


def test_text_output_is_a_checklist(bundle_file, capsys):
    assert main(["evaluate", str(bundle_file), "--today", "2025-03-03", "--format", "text", "--policy", "fda-label"]) == 0
    text = capsys.readouterr().out
    assert "Determination: MEETS CRITERIA" in text          # the label has no bone-age criterion
    assert "[x] Age 2 years or older" in text and "chosen: requested" in text
    assert "[x] Height SDS -3.0 or lower — rule: height SDS \u2264 \u22123.0 (centile 0.1)" in text
    assert "· 99.8 cm (SDS \u22123.41, < 0.1st centile) on " in text


def test_separate_order_file(bundle_file, tmp_path, capsys):
    chart = laron_boy().draft_order(0.3, "mL")
    order = tmp_path / "order.json"
    order.write_text(json.dumps(chart.order))
    assert main(["evaluate", str(bundle_file), "--order", str(order), "--today", "2025-03-03"]) == 0
    assert json.loads(capsys.readouterr().out)["dose"]["status"] == "above-maximum"


@pytest.mark.parametrize("args, message", [
    (["evaluate", "/nonexistent/chart.json"], "cannot read"),
    (["evaluate", "{bundle}", "--policy", "cigna"], "no policy 'cigna'"),
    (["evaluate", "{bundle}", "--order", "{bundle}"], "not a MedicationRequest"),
    (["evaluate", "{garbage}"], "not valid JSON"),
    (["evaluate", "{bundle}", "--policies", "/nonexistent"], "policy folder not found"),
])
def test_errors_exit_2_with_one_line_and_no_traceback(bundle_file, tmp_path, capsys, args, message):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    args = [a.format(bundle=bundle_file, garbage=garbage) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("patients, message", [
    (0, "no Patient resource"),
    (2, "2 Patient resources"),
])
def test_a_chart_without_exactly_one_patient_is_refused(bundle_file, tmp_path, capsys, patients, message):
    bundle = json.loads(bundle_file.read_text())
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    for n in range(patients):
        entries.append({"resource": {"resourceType": "Patient", "id": f"p{n}", "birthDate": "2017-01-01"}})
    path = tmp_path / "no-patient.json"
    path.write_text(json.dumps({**bundle, "entry": entries}))
    assert main(["evaluate", str(path), "--today", "2025-03-03"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == "" and captured.err.count("\n") == 1


def test_wired_into_the_main_command(bundle_file, capsys):
    assert cli_main(["evaluate", str(bundle_file), "--today", "2025-03-03", "--format", "text"]) == 0
    assert "Policy: Premera Blue Cross" in capsys.readouterr().out


def test_decision_is_plain_json_and_evaluation_is_fast(policies):
    chart = laron_boy().condition("cond-hypo", "icd10", "E03.9", "Hypothyroidism, unspecified")
    record = chart.record()
    decision = evaluate(record, policies, TODAY)
    assert json.loads(json.dumps(decision.to_jsonable()))["exclusions"][0]["id"] == "hypothyroidism"
    assert evaluate(record, policies, TODAY) == decision                        # pure: same input, same answer
    start = time.perf_counter()
    for _ in range(50):
        evaluate(record, policies, TODAY)
    assert (time.perf_counter() - start) / 50 < 0.05                           # far below the 500 ms budget
