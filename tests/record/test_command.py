"""`mecasermin-cds record`: the subcommand, driven through its own argparse parser."""
from __future__ import annotations

import argparse
import json

import pytest

from service.record.command import add_parser
from tests.record import builders as b
from tests.record.test_build import laron_chart


def run(argv):
    parser = argparse.ArgumentParser(prog="mecasermin-cds")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def chart_file(tmp_path):
    order = b.mecasermin_order()
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(b.bundle(*laron_chart(), order)), encoding="utf-8")
    return path


def test_prints_the_record_with_the_draft_order_from_the_bundle(chart_file, capsys):
    assert run(["record", str(chart_file), "--today", "2024-03-14"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["today"] == "2024-03-14" and out["patient"]["age_years"] == 6.0
    assert out["order"]["reference"] == "MedicationRequest/medrx-draft-1" and out["order"]["dose_mg"] == 0.8
    assert out["heights"][0]["date"] == "2024-03-01" and out["medications"][0]["category"] == "systemic-corticosteroid"


def test_order_file_wins(chart_file, tmp_path, capsys):
    other = b.mecasermin_order("medrx-other", dose=(0.1, "mL"))
    order_path = tmp_path / "order.json"
    order_path.write_text(json.dumps(other), encoding="utf-8")
    assert run(["record", str(chart_file), "--order", str(order_path), "--today", "2024-03-14"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["order"]["reference"] == "MedicationRequest/medrx-other" and out["order"]["dose_mg"] == 1.0


def test_without_a_draft_order_there_is_no_order(tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(b.bundle(*laron_chart())), encoding="utf-8")
    assert run(["record", str(path), "--today", "2024-03-14"]) == 0
    assert json.loads(capsys.readouterr().out)["order"] is None


def test_today_defaults_to_the_system_date(chart_file, capsys):
    assert run(["record", str(chart_file)]) == 0
    assert json.loads(capsys.readouterr().out)["today"]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    (b"{not json", "not valid JSON (line 1"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b'{"resourceType": "Bundle", "type": "searchset"}', "no FHIR resources found"),
    (b"[1, 2, 3]", "no FHIR resources found"),
])
def test_unreadable_bundle(tmp_path, capsys, content, message):
    path = tmp_path / "bundle.json"
    if content is not None:
        path.write_bytes(content)
    assert run(["record", str(path)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_order_that_is_not_a_medication_request(chart_file, tmp_path, capsys):
    path = tmp_path / "order.json"
    path.write_text(json.dumps(b.patient()), encoding="utf-8")
    assert run(["record", str(chart_file), "--order", str(path)]) == 2
    assert "not a MedicationRequest" in capsys.readouterr().err


def test_bad_today_is_a_usage_error(chart_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["record", str(chart_file), "--today", "14/03/2024"])
    assert exit_info.value.code == 2 and "YYYY-MM-DD" in capsys.readouterr().err


def test_wired_into_the_main_command(chart_file, capsys):
    from service.cli import main

    assert main(["record", str(chart_file), "--today", "2024-03-14"]) == 0
    assert json.loads(capsys.readouterr().out)["patient"]["sex"] == "male"
