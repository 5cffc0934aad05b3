"""What the readings of partial dates and radiology text decide: the label's age and epiphysis
checks and the criteria, on the reference chart with one thing changed."""
from __future__ import annotations

import pytest

from service.policy import load_policies
from tests.policy.charts import Chart, laron_boy


@pytest.fixture(scope="module")
def policies():
    return load_policies(default_policy="fda-label")


def findings(chart, policies):
    return {f.id: f for f in chart.decide(policies).label_findings}


def criterion(decision, criterion_id):
    return next(c for c in decision.criteria if c.id == criterion_id)


@pytest.mark.parametrize("birth_date, expected", [
    ("2024-01", ("age-under-minimum", "critical")),   # 1.08–1.17 years on 2025-03-03: under 2 whatever the day
    ("2023-03", ("age-unknown", "warning")),          # 1.93–2.0 years: may be under 2
    ("2023-02", None),                                # 2.0–2.09 years: 2 or older whatever the day
    ("2018", None),
])
def test_partial_birth_date_decides_the_age_check_only_when_both_ends_agree(policies, birth_date, expected):
    chart = laron_boy()
    chart.resources[0]["birthDate"] = birth_date
    ages = {k: (f.id, f.severity) for k, f in findings(chart, policies).items() if k.startswith("age")}
    assert ages == ({expected[0]: expected} if expected else {})


def test_age_finding_names_the_partial_birth_date(policies):
    chart = laron_boy()
    chart.resources[0]["birthDate"] = "2023-03"
    assert "2023-03" in findings(chart, policies)["age-unknown"].message


def test_height_criterion_with_a_year_only_birth_date(policies):
    chart = laron_boy()
    chart.resources[0]["birthDate"] = "2018"
    decision = chart.decide(policies)
    height = criterion(decision, "height")
    assert height.status == "met"                   # 99.8 cm is below −2.25 SD at every age 6.0–7.0


@pytest.mark.parametrize("conclusion, expected", [
    ("The physes are open. The epiphyses are fused.", ("epiphyses-conflicting", "warning")),
    ("Probable physeal fusion at the distal radius.", ("epiphyses-conflicting", "warning")),
    ("The growth plates of the distal radius and ulna have closed.", ("closed-epiphyses", "critical")),
    ("No evidence of epiphyseal fusion or physeal closure.", None),
    ("Rule out closed epiphyses.", None),
])
def test_epiphysis_findings_from_report_text(policies, conclusion, expected):
    chart = laron_boy().xray_report("dr-1", "2025-02-03", conclusion)
    epiphyses = {(f.id, f.severity) for f in chart.decide(policies).label_findings if "epiphys" in f.id}
    assert epiphyses == ({expected} if expected else set())


def test_a_later_clear_open_report_settles_an_unclear_one(policies):
    chart = (laron_boy().xray_report("dr-1", "2024-06-03", "Physeal closure cannot be excluded.")
             .xray_report("dr-2", "2025-02-03", "Growth plates are open."))
    assert not any("epiphys" in f.id for f in chart.decide(policies).label_findings)


def test_closed_before_and_unclear_now_stays_critical(policies):
    chart = (laron_boy().xray_report("dr-1", "2024-06-03", "Epiphyses fused.")
             .xray_report("dr-2", "2025-02-03", "Physeal closure cannot be excluded."))
    assert findings(chart, policies)["closed-epiphyses"].severity == "critical"


def test_report_bone_age_meets_the_bone_age_criterion(policies):
    chart = laron_boy().drop("Observation/ba-2024-12").xray_report(
        "dr-1", "2024-12-12", "Bone age 4 years 6 months (Greulich & Pyle). Chronological age 6 years 3 months.")
    bone_age = criterion(chart.decide(policies), "bone-age")
    assert bone_age.status == "met" and bone_age.evidence[0].value == 4.5
    assert "Greulich and Pyle" in bone_age.evidence[0].note and "Chronological" not in bone_age.evidence[0].note


def test_no_chart_without_a_patient_is_broken_by_these_readings(policies):
    chart = Chart()
    chart.resources = []
    assert chart.decide(policies).determination in ("documentation-needed", "does-not-meet")


def test_a_height_dated_to_a_month_half_inside_the_stale_data_window_is_unknown(policies):
    chart = laron_boy().drop("Observation/ht-2025-01")
    height = next(r for r in chart.resources if r.get("id") == "ht-2024-01")
    height.update(effectiveDateTime="2024-03")          # 2024-03-01 is 367 days before 2025-03-03, the 31st 337
    height.pop("issued")
    result = criterion(chart.decide(policies), "height")
    assert result.status == "unknown"
    assert "dated only from 2024-03-01 to 2024-03-31" in result.explanation


def test_a_baseline_dated_to_the_month_of_the_treatment_start_is_not_taken_as_pre_treatment(policies):
    chart = laron_boy().prior_mecasermin("2024-06-15")
    chart.height("ht-2024-06", "2024-06-20", 96.5)
    partial = next(r for r in chart.resources if r.get("id") == "ht-2024-06")
    partial.update(effectiveDateTime="2024-06")
    partial.pop("issued")
    result = criterion(chart.decide(policies), "height")
    assert result.basis == "baseline" and result.evidence[0].date.isoformat() == "2024-01-10"
    assert any("may be from after the start of treatment" in (e.note or "") for e in result.evidence)
