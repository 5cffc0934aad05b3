"""Label checks under every policy: contraindications are critical findings with their evidence."""
from __future__ import annotations

import pytest

from tests.policy.charts import SNOMED, UNII, Chart, laron_boy


def finding(decision, finding_id):
    matches = [f for f in decision.label_findings if f.id == finding_id]
    assert matches, [f.id for f in decision.label_findings]
    return matches[0]


def test_clean_chart_has_only_the_monitoring_note(policies):
    decision = laron_boy().decide(policies)
    assert {f.category for f in decision.label_findings} == {"monitoring"}
    assert len(decision.label_findings) == len(policies.label.monitoring)
    assert all(note.severity == "info" for note in decision.label_findings)
    messages = " ".join(note.message for note in decision.label_findings)
    assert "fundoscopy" in messages and "20 minutes" in messages


def test_mecasermin_hypersensitivity_is_critical(policies):
    chart = laron_boy().allergy("alg-1", {"coding": [{"system": SNOMED, "code": "418157000", "display": "Mecasermin"}],
                                          "text": "Increlex"}, reaction="generalised urticaria and wheeze")
    decision = chart.decide(policies)

    hit = finding(decision, "hypersensitivity-mecasermin")
    assert (hit.severity, hit.category) == ("critical", "contraindication")
    assert hit.evidence[0].reference == "AllergyIntolerance/alg-1"
    assert decision.determination == "meets-criteria"        # coverage and safety are answered separately


def test_benzyl_alcohol_hypersensitivity_is_critical(policies):
    chart = laron_boy().allergy("alg-2", {"coding": [{"system": UNII, "code": "LKG8494WBH", "display": "BENZYL ALCOHOL"}]},
                                criticality="low", reaction="contact dermatitis")
    hit = finding(chart.decide(policies), "hypersensitivity-benzyl-alcohol")
    assert hit.severity == "critical" and "inactive ingredient" in hit.message


def test_refuted_allergy_does_not_count(policies):
    chart = laron_boy().allergy("alg-3", {"text": "mecasermin"}, verification="refuted")
    assert not any(f.category == "contraindication" for f in chart.decide(policies).label_findings)


def test_closed_epiphyses_on_an_xray_report_are_critical(policies):
    chart = laron_boy().xray_report("dr-1", "2025-02-03", "Bone age 16 years. The epiphyses are fused.")
    decision = chart.decide(policies)

    hit = finding(decision, "closed-epiphyses")
    assert hit.severity == "critical"
    assert hit.evidence[0].reference == "DiagnosticReport/dr-1" and hit.evidence[0].date.isoformat() == "2025-02-03"


@pytest.mark.parametrize("system, code, display, status", [
    ("icd10", "C71.6", "Malignant neoplasm of cerebellum", "active"),
    ("icd10", "Z85.841", "Personal history of malignant neoplasm of brain", "active"),
    ("snomed", "363346000", "Malignant neoplastic disease", "remission"),
    ("snomed", "266987004", "History of malignant neoplasm", "active"),
])
def test_malignancy_active_or_history_is_critical(policies, system, code, display, status):
    chart = laron_boy().condition("cond-ca", system, code, display, status=status, onset="2022-02-14")
    hit = finding(chart.decide(policies), "malignancy")
    assert hit.severity == "critical" and hit.category == "contraindication"
    assert hit.evidence[0].code == code and hit.evidence[0].reference == "Condition/cond-ca"


def test_in_situ_neoplasm_is_a_warning_for_review(policies):
    chart = laron_boy().condition("cond-cis", "icd10", "D03.9", "Melanoma in situ, unspecified")
    hit = finding(chart.decide(policies), "in-situ-neoplasm")
    assert hit.severity == "warning"
    assert not any(f.id == "malignancy" for f in chart.decide(policies).label_findings)


def test_toddler_under_2_years_is_critical_and_has_no_height_sds(policies):
    chart = Chart(birth_date="2023-07-10").coverage()
    chart.condition("cond-1", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-1", "2025-02-10", 74.0).weight("wt-1", "2025-02-10", 8.9).draft_order(0.4, "mg")
    decision = chart.decide(policies)

    hit = finding(decision, "age-under-minimum")
    assert hit.severity == "critical" and "gasping" in hit.message
    assert hit.evidence[0].value == pytest.approx(1.65, abs=0.01)
    height = decision.criterion("height")
    assert height.status == "unknown" and "outside the CDC 2000" in height.evidence[0].note


def test_intravenous_route_is_critical(policies):
    chart = laron_boy().draft_order(0.9, "mg", route=("47625008", "Intravenous route"))
    hit = finding(chart.decide(policies), "intravenous-route")
    assert hit.severity == "critical" and "subcutaneous" in hit.message


def test_advanced_bone_age_warns_to_confirm_open_epiphyses(policies):
    chart = Chart(birth_date="2009-11-02").coverage()
    chart.condition("cond-1", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-1", "2025-02-18", 147.6).weight("wt-1", "2025-02-18", 40.5)
    chart.igf1("igf1-1", "2025-02-18", 55.0, low=197.0, high=956.0).gh("gh-1", "2025-02-18", 21.0)
    chart.bone_age("ba-1", "2025-02-18", 17.2).draft_order(3.2, "mg")
    decision = chart.decide(policies)

    hit = finding(decision, "advanced-bone-age")
    assert hit.severity == "warning" and "17.2" in hit.message and "male" in hit.message
    assert decision.criterion("bone-age").status == "not_met"


def test_label_findings_apply_under_every_policy(policies):
    chart = laron_boy().draft_order(0.9, "mg", route=("47625008", "Intravenous route"))
    for policy_id in ("premera-mecasermin", "fda-label", "aetna-cpb-0711"):
        decision = chart.decide(policies, policy_id=policy_id)
        assert finding(decision, "intravenous-route").severity == "critical", policy_id


def test_critical_findings_come_first_and_monitoring_last(policies):
    chart = laron_boy().draft_order(0.9, "mg", route=("47625008", "Intravenous route"), per_day=1)
    chart.medication("ins-1", "insulin lispro 100 unit/mL (Humalog)", rxnorm="1652639")
    severities = [f.severity for f in chart.decide(policies).label_findings]
    assert severities[0] == "critical" and severities[-1] == "info"
    assert severities == sorted(severities[:-1], key=["critical", "warning", "info"].index) + ["info"]
