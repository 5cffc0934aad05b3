"""Policy files are data validated at start-up: a broken file stops loading with a message that names
the file and the field (JSON path)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from service.policy import PolicyError, load_policies
from service.policy.loader import DEFAULT_LABEL_FILE, DEFAULT_POLICY_DIR, LABEL_SCHEMA, POLICY_SCHEMA
from tests.policy.charts import laron_boy

PREMERA = DEFAULT_POLICY_DIR / "premera-mecasermin.yaml"


def test_schemas_are_valid_draft_2020_12():
    for path in (POLICY_SCHEMA, LABEL_SCHEMA):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_shipped_policies_load_with_their_metadata(policies):
    assert policies.ids == ("aetna-cpb-0711", "fda-label", "premera-mecasermin")
    (premera,) = policies.get("premera-mecasermin").versions
    assert premera.verified is True and premera.kind == "payer"
    assert premera.last_review_date.isoformat() == "2023-12-01"
    assert (premera.approval_initial_months, premera.approval_reauthorization_months) == (12, 12)
    assert premera.source_url.startswith("https://")
    thresholds = {c["id"]: c.get("threshold") for c in premera.initial}
    assert thresholds == {"diagnosis": None, "height": -2.25, "igf1": -3.0, "gh-stimulation": 10, "bone-age": None}
    historical, aetna = policies.get("aetna-cpb-0711").versions
    assert aetna.verified is False and aetna.effective_date.isoformat() == "2025-09-26"
    assert historical.version.effective_to.isoformat() == "2025-09-25" and historical.effective_date is None
    for version in (historical, aetna):
        assert all(c.get("threshold") is None for c in version.initial if c["type"] != "diagnosis")
    assert policies.label.dosing.maximum == 0.12 and policies.label.dosing.start_high == 0.08


def _folder_with(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the shipped policy folder where one file's data is changed by `edit`."""
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    path = folder / name
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    result = edit(data)
    path.write_text(yaml.safe_dump(result if result is not None else data, sort_keys=False, allow_unicode=True))
    return folder


def _load_error(folder: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    return str(caught.value)


def test_wrong_threshold_type_names_file_and_field(tmp_path):
    def edit(data):
        data["criteria"]["initial"][1]["threshold"] = "minus two point two five"
    message = _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit))
    assert message.startswith("premera-mecasermin.yaml: $.criteria.initial[1].threshold:")


def test_misspelled_field_names_the_unknown_field(tmp_path):
    def edit(data):
        data["criteria"]["reauthorization"]["criteria"][0]["treshold"] = 2.5
    message = _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit))
    assert "premera-mecasermin.yaml: $.criteria.reauthorization.criteria[0].treshold: unknown field" in message


def test_missing_required_metadata_names_the_field(tmp_path):
    def edit(data):
        del data["verified"]
    message = _load_error(_folder_with(tmp_path, "aetna-cpb-0711.yaml", edit))
    assert message.startswith("aetna-cpb-0711.yaml: $.verified: required field is missing")


def test_invalid_date_is_rejected(tmp_path):
    def edit(data):
        data["effective_date"] = "2023-13-01"
    assert _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit)).startswith(
        "premera-mecasermin.yaml: $.effective_date:")


def test_bad_regular_expression_names_the_pattern(tmp_path):
    def edit(data):
        data["payer_match"]["name_patterns"] = ["premera(blue"]
    message = _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit))
    assert "premera-mecasermin.yaml: $.payer_match.name_patterns[0]: invalid regular expression" in message


def test_bad_icd10_entry_is_rejected(tmp_path):
    def edit(data):
        data["exclusions"][2]["match"][0]["icd10"] = ["E40-E46", "malnutrition"]
    message = _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit))
    assert message.startswith("premera-mecasermin.yaml: $.exclusions[2].match[0].icd10[1]:")


def test_reversed_icd10_range_is_rejected(tmp_path):
    def edit(data):
        data["exclusions"][2]["match"][0]["icd10"] = ["E46-E40"]
    message = _load_error(_folder_with(tmp_path, "premera-mecasermin.yaml", edit))
    assert "$.exclusions[2].match[0].icd10[0]: range start E46 is after its end E40" in message


def test_id_must_match_the_file_name(tmp_path):
    def edit(data):
        data["id"] = "premera"
    assert "premera-mecasermin.yaml: $.id: must equal the file name" in _load_error(
        _folder_with(tmp_path, "premera-mecasermin.yaml", edit))


def test_carry_over_must_name_an_initial_criterion(tmp_path):
    def edit(data):
        data["criteria"]["reauthorization"]["carry_over"].append("igf-1")
    assert "$.criteria.reauthorization.carry_over[4]: no initial criterion 'igf-1'" in _load_error(
        _folder_with(tmp_path, "premera-mecasermin.yaml", edit))


def test_a_verified_policy_cannot_leave_a_threshold_unknown(tmp_path):
    def edit(data):
        data["criteria"]["initial"][2]["threshold"] = None
        data["criteria"]["initial"][2]["verify_note"] = "unknown"
    assert "$.criteria.initial[2].threshold: a verified policy cannot leave a threshold unknown" in _load_error(
        _folder_with(tmp_path, "premera-mecasermin.yaml", edit))


def test_unknown_threshold_needs_a_verify_note(tmp_path):
    def edit(data):
        del data["criteria"]["initial"][1]["verify_note"]
    assert "aetna-cpb-0711.yaml: $.criteria.initial[1].verify_note: required when the threshold is null" in _load_error(
        _folder_with(tmp_path, "aetna-cpb-0711.yaml", edit))


def test_duplicate_yaml_key_is_rejected_with_its_line(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    path = folder / "fda-label.yaml"
    path.write_text(path.read_text().replace("verified: true\n", "verified: true\nverified: false\n", 1))
    message = _load_error(folder)
    assert message.startswith("fda-label.yaml: line ") and "duplicate key 'verified'" in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    (folder / "fda-label.yaml").write_text("id: fda-label\ntitle: [unclosed\n")
    message = _load_error(folder)
    assert message.startswith("fda-label.yaml: line 3") and "invalid YAML" in message


def test_json_policy_files_are_accepted_and_duplicate_ids_rejected(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    data = yaml.safe_load((folder / "fda-label.yaml").read_text())
    (folder / "fda-label.json").write_text(json.dumps(data))
    assert "fda-label.yaml: $.id: policy id 'fda-label' is also defined in fda-label.json" in _load_error(folder)
    (folder / "fda-label.yaml").unlink()
    assert "fda-label" in load_policies(folder).ids


def test_missing_default_policy_and_empty_folder_stop_start_up(tmp_path):
    with pytest.raises(PolicyError, match="default policy 'cigna' is not among the loaded policies"):
        load_policies(DEFAULT_POLICY_DIR, default_policy="cigna")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match="no policy files"):
        load_policies(tmp_path / "empty")


def test_broken_label_file_names_the_label_file_and_field(tmp_path):
    label = tmp_path / "label.yaml"
    data = yaml.safe_load(DEFAULT_LABEL_FILE.read_text())
    data["dosing"]["maximum_mg_per_kg"] = "0.12 mg/kg"
    label.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=r"^label\.yaml: \$\.dosing\.maximum_mg_per_kg:"):
        load_policies(DEFAULT_POLICY_DIR, label_file=label)


def test_adding_a_payer_is_adding_a_file(tmp_path, policies):
    """A new plan with its own thresholds and payer identifier, with no code change."""
    def new_payer(_):
        data = yaml.safe_load(PREMERA.read_text())
        data.update(id="northwind-health-mecasermin", title="Northwind Health — mecasermin")
        data["payer_match"] = {"identifiers": ["http://example.org/payer-id|NW123"], "name_patterns": []}
        data["criteria"]["initial"][1]["threshold"] = -3.0         # this plan uses the label's height limit
        data["criteria"]["initial"][1].pop("ambiguity")
        return data
    folder = _folder_with(tmp_path, "northwind-health-mecasermin.yaml", new_payer)
    custom = load_policies(folder)

    chart = laron_boy(coverage=False).coverage("NW Health Plan", identifier=("http://example.org/payer-id", "NW123"))
    chart.drop("Observation/ht-2025-01").height("ht-2025-01b", "2025-01-15", 102.8)     # SDS about -2.7
    decision = chart.decide(custom)
    assert decision.policy.id == "northwind-health-mecasermin"
    assert decision.policy_choice.detail.startswith("payer identifier http://example.org/payer-id|NW123")
    assert decision.criterion("height").status == "not_met"
    assert chart.decide(policies, policy_id="premera-mecasermin").criterion("height").status == "met"
