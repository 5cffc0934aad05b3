"""Dose checks: mg/kg per dose against the label, with a corrected dose rounded down to 0.1 mg."""
from __future__ import annotations

import pytest

from tests.policy.charts import laron_boy


def chart_20kg():
    return laron_boy().drop("Observation/wt-2025-02").weight("wt-2025-02b", "2025-02-24", 20.0)


def test_ml_based_order_is_converted_at_10_mg_per_ml(policies):
    decision = chart_20kg().draft_order(0.15, "mL").decide(policies)

    dose = decision.dose
    assert (dose.original_value, dose.original_unit, dose.dose_mg) == (0.15, "mL", 1.5)
    assert dose.mg_per_kg == pytest.approx(0.075)
    assert dose.status == "ok" and dose.proposed is None
    assert dose.setting == "new-start" and dose.per_day == 2
    assert "0.15 mL" in dose.message or "1.5 mg" in dose.message
    assert not any(f.category == "dose" for f in decision.label_findings)


def test_overdose_above_0_12_mg_per_kg_is_critical_with_the_maximum_proposed(policies):
    decision = chart_20kg().draft_order(0.3, "mL").decide(policies)    # 3 mg / 20 kg = 0.15 mg/kg

    dose = decision.dose
    assert dose.status == "above-maximum"
    assert (dose.proposed.dose_mg, dose.proposed.volume_ml, dose.proposed.mg_per_kg) == (2.4, 0.24, 0.12)
    assert "0.12" in dose.proposed.rule
    hit = next(f for f in decision.label_findings if f.id == "dose-above-maximum")
    assert hit.severity == "critical" and hit.evidence[1].reference == "Observation/wt-2025-02b"


def test_corrected_dose_is_rounded_down_to_0_1_mg(policies):
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", 23.3)
    decision = chart.draft_order(3.5, "mg").decide(policies)              # 0.150 mg/kg

    proposed = decision.dose.proposed
    assert proposed.dose_mg == 2.7                                          # 0.12 × 23.3 = 2.796 → 2.7
    assert proposed.volume_ml == 0.27 and proposed.mg_per_kg == pytest.approx(0.1159, abs=0.0001)


def test_new_start_above_0_08_mg_per_kg_is_a_warning_with_the_top_of_the_start_range(policies):
    decision = chart_20kg().draft_order(2.0, "mg").decide(policies)       # 0.10 mg/kg for a new start

    dose = decision.dose
    assert dose.status == "above-start-range"
    assert (dose.proposed.dose_mg, dose.proposed.volume_ml) == (1.6, 0.16)
    hit = next(f for f in decision.label_findings if f.id == "dose-above-start-range")
    assert hit.severity == "warning"


def test_once_daily_is_a_warning(policies):
    decision = chart_20kg().draft_order(1.2, "mg", per_day=1).decide(policies)

    assert decision.dose.status == "ok" and decision.dose.per_day == 1
    hit = next(f for f in decision.label_findings if f.id == "dose-frequency")
    assert hit.severity == "warning" and "twice daily" in hit.message


def test_weight_older_than_90_days_makes_the_dose_check_unknown(policies):
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-old", "2024-10-01", 15.1)
    decision = chart.draft_order(0.9, "mg").decide(policies)

    assert decision.dose.status == "unknown" and decision.dose.mg_per_kg is None
    hit = next(f for f in decision.label_findings if f.id == "dose-unchecked")
    assert "2024-10-01" in hit.message and "cannot be checked" in hit.message


def test_dose_unit_that_cannot_be_converted_says_so(policies):
    decision = chart_20kg().draft_order(1.0, "{pill}", ucum="{pill}").decide(policies)

    assert decision.dose.status == "unknown"
    assert "{pill}" in next(f for f in decision.label_findings if f.id == "dose-unchecked").message


def test_mg_per_kg_order_is_checked_as_written(policies):
    decision = chart_20kg().draft_order(0.14, "mg/kg", ucum="mg/kg").decide(policies)
    assert decision.dose.status == "above-maximum" and decision.dose.dose_mg == pytest.approx(2.8)
    assert decision.dose.proposed.dose_mg == 2.4


def test_no_order_means_no_dose_finding(policies):
    decision = laron_boy(order=False).decide(policies)
    assert decision.dose is None
    assert decision.criterion("diagnosis").status == "met"    # from the problem list
