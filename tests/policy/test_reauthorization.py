"""Re-authorization: baseline (pre-treatment) height, IGF-1 and GH; current growth velocity and bone age."""
from __future__ import annotations

import pytest

from tests.policy.charts import Chart

START = "2024-02-19"     # first mecasermin order


def reauth_boy(*, latest_height: float = 116.6, bone_age: float = 7.4) -> Chart:
    """Boy born 2016-04-11 with Laron syndrome, on mecasermin since 2024-02-19, renewal due."""
    chart = Chart(birth_date="2016-04-11").coverage()
    chart.condition("cond-laron", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency",
                    onset="2022-06-01")
    # before treatment
    chart.height("ht-2023-12", "2023-12-04", 107.8).height("ht-2024-02", "2024-02-12", 108.8)
    chart.igf1("igf1-2023-11", "2023-11-20", 16.0)
    chart.gh("gh-2023-11", "2023-11-20", 19.0)
    chart.bone_age("ba-2023-12", "2023-12-04", 5.8)
    chart.prior_mecasermin(START)
    # on treatment (the velocity pairs heights measured on mecasermin only)
    chart.height("ht-2024-03", "2024-03-04", 109.0)
    chart.igf1("igf1-2025-02", "2025-02-10", 140.0)             # normal on treatment: not a baseline value
    chart.height("ht-2025-02", "2025-02-10", latest_height)
    chart.weight("wt-2025-02", "2025-02-10", 21.0)
    chart.bone_age("ba-2025-02", "2025-02-10", bone_age)
    chart.draft_order(2.5, "mg")                                 # 0.119 mg/kg: the third titration step
    return chart


def test_reauthorization_with_good_response_meets_criteria(policies):
    decision = reauth_boy().decide(policies)

    assert decision.authorization == "re-authorization"
    assert decision.treatment_start.isoformat() == START
    assert [c.id for c in decision.criteria] == ["diagnosis", "height", "igf1", "gh-stimulation",
                                                 "growth-velocity", "bone-age-response"]
    assert all(c.status == "met" for c in decision.criteria)
    assert decision.determination == "meets-criteria" and decision.approval_months == 12

    height, igf1 = decision.criterion("height"), decision.criterion("igf1")
    assert height.basis == "baseline" and height.evidence[0].reference == "Observation/ht-2024-02"
    assert igf1.evidence[0].reference == "Observation/igf1-2023-11"     # not the on-treatment 140 ng/mL
    assert any("during treatment" in (e.note or "") for e in igf1.evidence)
    velocity = decision.criterion("growth-velocity")
    assert velocity.evidence[0].value == pytest.approx(8.09, abs=0.01)     # 109.0 → 116.6 cm over 343 days
    assert velocity.evidence[0].unit == "cm/year"
    assert decision.dose.setting == "continuing" and decision.dose.status == "ok"
    assert "0.12 mg/kg step" in decision.dose.message


def test_reauthorization_fails_on_growth_velocity_below_2_5(policies):
    decision = reauth_boy(latest_height=110.7).decide(policies)

    velocity = decision.criterion("growth-velocity")
    assert velocity.status == "not_met"
    assert velocity.evidence[0].value == pytest.approx(1.81, abs=0.01)
    assert decision.determination == "does-not-meet" and decision.sub_reason == "criteria-not-met"


def test_reauthorization_fails_on_bone_age_above_16_for_a_boy(policies):
    chart = Chart(birth_date="2009-11-02").coverage()
    chart.condition("cond-laron", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-2023-01", "2023-01-09", 131.0).igf1("igf1-2023-01", "2023-01-09", 30.0, low=183.0, high=850.0)
    chart.gh("gh-2023-01", "2023-01-09", 22.0)
    chart.prior_mecasermin("2023-03-06")
    chart.height("ht-2024-02", "2024-02-20", 142.0).height("ht-2025-02", "2025-02-18", 147.6)
    chart.weight("wt-1", "2025-02-18", 40.5).bone_age("ba-2025-02", "2025-02-18", 16.4)
    chart.draft_order(4.8, "mg")
    decision = chart.decide(policies)

    bone = decision.criterion("bone-age-response")
    assert bone.status == "not_met" and "<= 16" in bone.explanation
    assert decision.criterion("growth-velocity").status == "met"
    assert decision.determination == "does-not-meet"


def test_reauthorization_without_pre_treatment_igf1_is_unknown_and_no_test_can_settle_it(policies):
    chart = reauth_boy().drop("Observation/igf1-2023-11")
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "unknown"
    assert igf1.missing_test is None                     # a new test during treatment is not a baseline
    assert "before mecasermin was started (2024-02-19)" in igf1.explanation
    assert "igf1" not in decision.missing_tests
    assert decision.determination == "documentation-needed"


def test_reauthorization_without_a_recent_height_on_treatment_cannot_show_a_response(policies):
    chart = reauth_boy().drop("Observation/ht-2025-02").height("ht-2023-03", "2023-03-01", 104.4)
    decision = chart.decide(policies)

    # pre-treatment heights (2023-03-01 → 2024-02-12) do not show a response; only 2024-03-04 is on treatment
    velocity = decision.criterion("growth-velocity")
    assert velocity.status == "unknown" and velocity.missing_test == "height"
    assert "2024-02-19" in velocity.explanation and "not yet measurable" in velocity.explanation
