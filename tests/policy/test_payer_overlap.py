"""Two policy files that could match the same payer are refused at load (docs/policies.md, "Who the
policy is for"), instead of being resolved by file order; each name pattern carries example payer names."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from service.policy import PolicyError, load_policies
from service.policy.loader import DEFAULT_POLICY_DIR


def _with_payer(tmp_path: Path, payer_match: dict, kind: str = "payer") -> Path:
    """The shipped folder plus a third payer file (a copy of Premera's rules) with this payer_match."""
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    data = yaml.safe_load((folder / "premera-mecasermin.yaml").read_text())
    data.update(id="zeta-health", title="Zeta Health — mecasermin", kind=kind, payer_match=payer_match)
    data.pop("examples")
    (folder / "zeta-health.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return folder


def _error(folder: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    return str(caught.value)


def test_a_pattern_that_also_matches_another_files_payer_is_refused_naming_both_files(tmp_path):
    folder = _with_payer(tmp_path, {"identifiers": [], "name_patterns": [r"\bblue cross\b"],
                                    "example_names": ["Zeta Blue Cross"]})
    assert _error(folder) == ("zeta-health.yaml: $.payer_match: could match the same payer as premera-mecasermin.yaml: "
                              "premera-mecasermin.yaml names the payer 'Premera Blue Cross', which the name patterns "
                              "of zeta-health.yaml also match")


def test_another_files_pattern_matching_this_files_example_is_refused(tmp_path):
    folder = _with_payer(tmp_path, {"identifiers": [], "name_patterns": [r"\bzeta\b"],
                                    "example_names": ["Zeta Health", "Aetna Zeta Plan"]})
    assert "'Aetna Zeta Plan', which the name patterns of aetna-cpb-0711.yaml also match" in _error(folder)


def test_a_name_the_other_file_excludes_is_not_an_overlap(tmp_path):
    # Aetna's commercial bulletin excludes "Aetna Better Health" (its Medicaid plans) by name.
    folder = _with_payer(tmp_path, {"identifiers": [], "name_patterns": [r"\baetna better health\b"],
                                    "example_names": ["Aetna Better Health of Washington"]})
    policies = load_policies(folder)
    assert "zeta-health" in policies.ids


@pytest.mark.parametrize("mine, theirs", [
    ("http://hl7.org/fhir/sid/us-npi|1234567893", "http://hl7.org/fhir/sid/us-npi|1234567893"),
    ("1234567893", "http://hl7.org/fhir/sid/us-npi|1234567893"),    # a bare value matches it in any system
])
def test_a_shared_payer_identifier_is_refused(tmp_path, mine, theirs):
    folder = _with_payer(tmp_path, {"identifiers": [mine], "name_patterns": []})
    path = folder / "premera-mecasermin.yaml"
    data = yaml.safe_load(path.read_text())
    data["payer_match"]["identifiers"] = [theirs]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    message = _error(folder)
    assert "zeta-health.yaml: $.payer_match: could match the same payer as premera-mecasermin.yaml" in message
    assert "both match payer identifier 'http://hl7.org/fhir/sid/us-npi|1234567893'" in message


def test_the_same_value_in_two_systems_is_not_an_overlap(tmp_path):
    folder = _with_payer(tmp_path, {"identifiers": ["urn:oid:2.16.840.1.113883.3.1|60054"], "name_patterns": []})
    path = folder / "premera-mecasermin.yaml"
    data = yaml.safe_load(path.read_text())
    data["payer_match"]["identifiers"] = ["http://hl7.org/fhir/sid/us-npi|60054"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    assert "zeta-health" in load_policies(folder).ids


@pytest.mark.parametrize("payer_match, expected", [
    ({"identifiers": [], "name_patterns": [r"\bzeta\b"]}, "$.payer_match.example_names: required with name_patterns"),
    ({"identifiers": [], "name_patterns": [r"\bzeta\b", r"\bomega\b"], "example_names": ["Zeta Health"]},
     "$.payer_match.name_patterns[1]: matches none of example_names"),
    ({"identifiers": [], "name_patterns": [r"\bzeta\b"], "example_names": ["Zeta Health", "Omega Health"]},
     "$.payer_match.example_names[1]: 'Omega Health' is not matched by the name patterns"),
    ({"identifiers": [], "name_patterns": [r"\bzeta\b"], "example_names": ["Zeta Medicare Plan"],
      "exclude": {"name_patterns": ["medicare"]}}, "$.payer_match.example_names[0]: 'Zeta Medicare Plan' is not matched"),
])
def test_every_name_pattern_has_an_example_payer_name_it_matches(tmp_path, payer_match, expected):
    assert f"zeta-health.yaml: {expected}" in _error(_with_payer(tmp_path, payer_match))


def test_the_label_policy_is_never_matched_by_a_payer_and_never_overlaps(tmp_path):
    folder = _with_payer(tmp_path, {"identifiers": [], "name_patterns": [r"\bpremera\b"],
                                    "example_names": ["Premera Blue Cross"]}, kind="label")
    assert "zeta-health" in load_policies(folder).ids
