"""Policy versions (docs/policies.md, "Versions"): the loader's checks, the version in force on the
order's date (effective_to inclusive), no version in force, and the file's digest on the decision."""
from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from service.policy import PolicyError, load_policies
from service.policy.loader import DEFAULT_POLICY_DIR
from service.wording.policy import no_version_reason, version_line, version_words
from tests.policy.charts import laron_boy

PREMERA = "premera-mecasermin.yaml"


def _versions(data: dict, versions: list[dict]) -> dict:
    data.pop("effective_date")
    data.pop("examples")          # they expect the shipped file's one version
    data["versions"] = versions
    return data


def _two_versions(data: dict) -> dict:
    """Premera as two dated versions: the later one asks for a height SDS below -3.0."""
    later = {"initial": [dict(c, threshold=-3.0) if c["id"] == "height" else c for c in data["criteria"]["initial"]],
             "reauthorization": data["criteria"]["reauthorization"]}
    return _versions(data, [
        {"version": "2024-03", "effective_from": "2024-03-01", "effective_to": "2025-09-25"},
        {"version": "2025-10", "effective_from": "2025-10-01", "criteria": later, "last_review_date": "2025-10-01"},
    ])


def _folder(tmp_path: Path, edit, name: str = PREMERA) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, folder)
    path = folder / name
    path.write_text(yaml.safe_dump(edit(yaml.safe_load(path.read_text())), sort_keys=False, allow_unicode=True))
    return folder


def _error(folder: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    return str(caught.value)


@pytest.fixture(scope="module")
def versioned(tmp_path_factory):
    return load_policies(_folder(tmp_path_factory.mktemp("versions"), _two_versions), default_policy="fda-label")


def _decide(policies, authored: str | None, today: date = date(2026, 3, 1)):
    chart = laron_boy()
    if authored is None:
        chart.order.pop("authoredOn")
    else:
        chart.order["authoredOn"] = authored
    return chart.decide(policies, today)


@pytest.mark.parametrize("authored, version", [
    ("2024-03-01", "2024-03"),                  # effective_from is inclusive
    ("2025-09-25", "2024-03"),               # effective_to is inclusive
    ("2025-09-25T23:30:00-07:00", "2024-03"),   # the local date as written, not UTC
    ("2025-10-01", "2025-10"),
    ("2027-01-01", "2025-10"),                  # the newest version is open-ended
])
def test_the_version_in_force_on_the_order_date_applies(versioned, authored, version):
    decision = _decide(versioned, authored)
    assert decision.policy.version.name == version
    assert decision.policy.version_choice.basis == "order-date"
    assert decision.policy.version_choice.on.isoformat() == authored[:10]
    height = decision.criterion("height")
    assert height.threshold.startswith("height SDS <")
    assert ("3.0" in height.threshold) == (version == "2025-10") and ("2.25" in height.threshold) != (version == "2025-10")


@pytest.mark.parametrize("authored, day", [("2024-02-29", "2024-02-29"), ("2025-09-27", "2025-09-27")])
def test_no_version_in_force_before_or_between_versions_needs_documentation(versioned, authored, day):
    decision = _decide(versioned, authored)
    assert decision.policy.version is None and decision.determination == "documentation-needed"
    assert decision.criteria == () and decision.exclusions == () and decision.recommended_icd10 is None
    (reason,) = decision.reasons
    assert f"premera-mecasermin) is in force on the order date {day}" in reason
    assert "2024-03 (2024-03-01 to 2025-09-25), 2025-10 (from 2025-10-01)" in reason
    assert reason == no_version_reason(decision.policy)
    assert decision.dose is not None                       # the label's dose check still applies
    assert version_line(decision.policy).startswith(f"No policy version in force (order date {day}) · sha256 ")
    assert version_words(decision.policy) == f"No policy version in force on the order date {day}"


def test_an_order_without_a_date_is_judged_on_the_evaluation_day_and_says_so(versioned):
    decision = _decide(versioned, None, today=date(2025, 9, 25))
    assert decision.policy.version.name == "2024-03"
    assert decision.policy.version_choice.basis == "evaluation-day"
    assert version_words(decision.policy) == "Version 2024-03, in force on the evaluation day 2025-09-25 (no order date)"
    assert version_line(decision.policy).startswith("Version 2024-03 (no order date; as of 2025-09-25) · sha256 ")


def test_an_order_dated_only_to_a_month_is_not_read_as_its_first_day(versioned):
    decision = _decide(versioned, "2025-09", today=date(2026, 3, 1))
    assert decision.policy.version.name == "2025-10"
    assert "the order's date '2025-09' is not a full date" in version_words(decision.policy)
    assert version_line(decision.policy).startswith("Version 2025-10 (order date '2025-09' partial; as of 2026-03-01)")


def test_the_decision_names_the_version_and_the_files_digest(versioned):
    decision = _decide(versioned, "2026-01-05")
    path = Path(versioned.folder) / PREMERA
    assert decision.policy.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert version_line(decision.policy) == f"Version 2025-10 (order date 2026-01-05) · sha256 {decision.policy.digest[:8]}"
    assert decision.to_jsonable()["policy"]["version"]["name"] == "2025-10"


def test_a_file_without_versions_is_one_version_from_its_effective_date(policies):
    decision = laron_boy().decide(policies)
    assert (decision.policy.version.name, decision.policy.version.declared) == ("2023-12-01", False)
    assert version_line(decision.policy).startswith("Policy of 2023-12-01 (order date 2025-03-03) · sha256 ")
    assert version_words(decision.policy) == "Policy effective 2023-12-01, applied on the order date 2025-03-03"
    before = _decide(policies, "2023-11-30", today=date(2023, 11, 30))
    assert before.policy.version is None and "one version, from 2023-12-01" in before.reasons[0]


def test_aetna_applies_its_historical_outline_up_to_the_revision(policies):
    def aetna(authored):
        chart = laron_boy(coverage=False)
        chart.coverage("Aetna Life Insurance Company", plan="Aetna Choice POS II")
        chart.order["authoredOn"] = authored
        return chart.decide(policies, date(2026, 3, 1))
    before, after = aetna("2025-09-25"), aetna("2025-09-26")
    assert (before.policy.version.name, after.policy.version.name) == ("pre-2025-09", "2025-09")
    assert "before its 2025-09-26 revision" in before.policy.verification_note
    assert "revision of CPB 0711 could not be retrieved" in after.policy.verification_note
    assert before.determination == after.determination == "documentation-needed"


# ------------------------------------------------------------------------------ loader errors

def test_overlapping_versions_are_refused_naming_the_file_and_both_versions(tmp_path):
    def edit(data):
        return _versions(data, [{"version": "2024-03", "effective_from": "2024-03-01", "effective_to": "2025-09-26"},
                                {"version": "2025-09", "effective_from": "2025-09-26"}])
    message = _error(_folder(tmp_path, edit))
    assert message.startswith("premera-mecasermin.yaml: $.versions[1]: version '2025-09' (from 2025-09-26, "
                              "open-ended) overlaps version '2024-03' (from 2024-03-01 to 2025-09-26)")


@pytest.mark.parametrize("versions, expected", [
    ([{"version": "a", "effective_from": "2025-01-01", "effective_to": "2024-01-01"}],
     "$.versions[0].effective_to: 2024-01-01 is before effective_from 2025-01-01"),
    ([{"version": "a", "effective_from": "2024-01-01", "effective_to": "2024-12-31"},
      {"version": "a", "effective_from": "2025-01-01"}], "$.versions[1].version: version 'a' is also $.versions[0]"),
    ([{"version": "a"}, {"version": "b", "effective_to": "2024-01-01"}], "overlaps version"),
    ([{"version": "a", "effective_from": "2024-01-01"}, {"version": "b", "effective_from": "2025-01-01"}],
     "$.versions[1]: version 'b' (from 2025-01-01, open-ended) overlaps version 'a'"),
    ([{"version": "a b"}], "$.versions[0].version: 'a b' does not match"),
    ([{"version": "a", "effective_from": "2024-02-30"}], "$.versions[0].effective_from: '2024-02-30' is not a 'date'"),
    ([{"version": "a", "dosing": {}}], "$.versions[0].dosing: unknown field"),
    ([], "$.versions: [] should be non-empty"),
])
def test_malformed_versions_are_refused(tmp_path, versions, expected):
    assert expected in _error(_folder(tmp_path, lambda data: _versions(data, versions)))


def test_a_versions_section_is_validated_by_the_top_level_schema(tmp_path):
    def edit(data):
        criteria = {"initial": [dict(c, threshold="low") if c["id"] == "height" else c
                                for c in data["criteria"]["initial"]],
                    "reauthorization": data["criteria"]["reauthorization"]}
        return _versions(data, [{"version": "2024-03", "effective_from": "2024-03-01", "effective_to": "2025-09-25"},
                                {"version": "2025-10", "effective_from": "2025-10-01", "criteria": criteria}])
    message = _error(_folder(tmp_path, edit))
    assert message.startswith("premera-mecasermin.yaml: $.versions[1].criteria.initial[1].threshold: 'low' is not")


def test_a_verified_version_cannot_leave_a_threshold_unknown(tmp_path):
    def edit(data):
        criteria = {"initial": [dict(c, threshold=None, verify_note="ask") if c["id"] == "height" else c
                                for c in data["criteria"]["initial"]],
                    "reauthorization": data["criteria"]["reauthorization"]}
        return _versions(data, [{"version": "v1", "effective_from": "2024-03-01", "criteria": criteria}])
    assert "$.versions[0].criteria.initial[1].threshold: a verified policy cannot leave" in _error(_folder(tmp_path, edit))


def test_a_section_neither_the_file_nor_a_version_gives_is_named(tmp_path):
    def edit(data):
        data.pop("criteria")
        return _versions(data, [{"version": "v1", "effective_from": "2024-03-01"}])
    assert ("$.criteria: required field is missing (in version 'v1', from the top level)"
            in _error(_folder(tmp_path, edit)))


def test_effective_date_is_refused_beside_versions(tmp_path):
    def edit(data):
        data["versions"] = [{"version": "v1", "effective_from": "2024-03-01"}]
        return data
    assert "$.effective_date: not used when the file has versions" in _error(_folder(tmp_path, edit))
