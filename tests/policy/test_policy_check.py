"""`mecasermin-cds policy check FILE` (docs/policies.md): every shipped policy passes its own example
cases (this is how CI runs them), a wrong expectation fails with the table row and exit 1, an invalid
file exits 2 naming the file and the field, and the examples' shape is checked when the service loads."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from service.cli import main
from service.policy import PolicyError, load_policies
from service.policy.loader import DEFAULT_POLICY_DIR, policy_paths

SHIPPED = policy_paths(DEFAULT_POLICY_DIR)


def check(capsys, path: Path, *extra: str) -> tuple[int, str, str]:
    status = main(["policy", "check", str(path), *extra])
    out, err = capsys.readouterr()
    return status, out, err


def _copy(tmp_path: Path, name: str, edit) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    path = folder / name
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(edit(data) or data, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_policy_passes_its_example_cases(capsys, path):
    status, out, err = check(capsys, path)
    assert status == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"{path.name}: valid · ") and "sha256 " in lines[0]
    assert lines[1].split()[:3] == ["case", "version", "applied"]
    cases = yaml.safe_load(path.read_text())["examples"]
    assert len(cases) >= 3 and lines[-1] == f"{len(cases)} case(s): {len(cases)} passed, 0 failed"
    assert all(line.endswith("  pass") for line in lines[2:-1])
    outcomes = {case["expect"]["determination"] for case in cases}
    verified = yaml.safe_load(path.read_text())["verified"]
    # A policy whose criteria are unverified cannot meet them; every other outcome it can reach is shown.
    wanted = {"does-not-meet", "documentation-needed"} | ({"meets-criteria"} if verified else set())
    assert wanted <= outcomes


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_came(tmp_path, capsys):
    def edit(data):
        data["examples"][0]["expect"] = {"determination": "does-not-meet", "criteria": {"igf1": "not_met"}}
    status, out, _ = check(capsys, _copy(tmp_path, "premera-mecasermin.yaml", edit))
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith("Laron syndrome, every initial criterion met"))
    cells = [cell for cell in row.split("  ") if cell.strip()]
    assert [c.strip() for c in cells] == ["Laron syndrome, every initial criterion met", "2023-12-01",
                                          "does-not-meet; igf1=not_met", "meets-criteria; igf1=met", "FAIL"]
    assert out.splitlines()[-1] == "4 case(s): 3 passed, 1 failed"


def test_the_order_date_chooses_the_version(tmp_path, capsys):
    def edit(data):
        data["examples"][1]["order_date"] = "2025-09-26"     # the revision, not the historical outline
    status, out, _ = check(capsys, _copy(tmp_path, "aetna-cpb-0711.yaml", edit))
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith("ordered the day before the revision"))
    assert "  2025-09  " in row and "version pre-2025-09" in row and "version 2025-09;" in row and row.endswith("FAIL")


def test_a_chart_without_a_draft_order_fails_its_case(tmp_path, capsys):
    def edit(data):
        data["examples"][2]["chart"] = [r for r in data["examples"][2]["chart"] if r["resourceType"] != "MedicationRequest"]
    status, out, _ = check(capsys, _copy(tmp_path, "premera-mecasermin.yaml", edit))
    assert status == 1 and "error: example 'no bone age on file, documentation needed': no draft mecasermin" in out


def test_an_invalid_file_exits_2_naming_the_file_and_the_field(tmp_path, capsys):
    def edit(data):
        data["examples"][0]["expect"]["determination"] = "approved"
    status, out, err = check(capsys, _copy(tmp_path, "premera-mecasermin.yaml", edit))
    assert status == 2 and out == ""
    assert err.startswith("mecasermin-cds policy check: premera-mecasermin.yaml: $.examples[0].expect.determination: "
                          "'approved' is not one of")


def test_a_file_without_cases_does_not_pass(tmp_path, capsys):
    status, out, _ = check(capsys, _copy(tmp_path, "premera-mecasermin.yaml", lambda data: data.pop("examples") and None))
    assert status == 1 and "no example cases to run" in out


def test_a_draft_outside_the_folder_is_checked_among_the_folders_payers(tmp_path, capsys):
    draft = tmp_path / "premera-copy.yaml"
    data = yaml.safe_load((DEFAULT_POLICY_DIR / "premera-mecasermin.yaml").read_text())
    data["id"] = "premera-copy"
    draft.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    status, _, err = check(capsys, draft, "--policies", str(DEFAULT_POLICY_DIR))
    assert status == 2
    assert "$.payer_match: could match the same payer as" in err
    assert "premera-copy.yaml names the payer 'Premera Blue Cross', which the name patterns of premera-mecasermin.yaml" in err


@pytest.mark.parametrize("edit, expected", [
    (lambda ex: ex[0]["expect"].update(version="2024-01"),
     "$.examples[0].expect.version: no version '2024-01' on file (2023-12-01; or 'none in force')"),
    (lambda ex: ex[1].update(name=ex[0]["name"]), "$.examples[1].name: example 'Laron syndrome, every initial"),
    (lambda ex: ex[0]["expect"]["criteria"].update(weight="met"), "$.examples[0].expect.criteria.weight: no criterion"),
    (lambda ex: ex[0]["expect"]["criteria"].update(height="yes"), "$.examples[0].expect.criteria.height: 'yes' is not"),
    (lambda ex: ex[0]["expect"].pop("determination"), "$.examples[0].expect.determination: required field is missing"),
    (lambda ex: ex[0].update(today="2025-02-30"), "$.examples[0].today: '2025-02-30' is not a 'date'"),
    (lambda ex: ex[0]["chart"].append({"id": "x"}), "$.examples[0].chart[8].resourceType: required field is missing"),
])
def test_the_examples_shape_is_checked_when_the_service_loads(tmp_path, edit, expected):
    def change(data):
        edit(data["examples"])
    path = _copy(tmp_path, "premera-mecasermin.yaml", change)
    with pytest.raises(PolicyError) as caught:
        load_policies(path.parent)
    assert expected in str(caught.value)
