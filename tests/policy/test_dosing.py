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


def test_overdose_of_a_new_start_is_critical_and_the_fix_lands_in_the_starting_range(policies):
    decision = chart_20kg().draft_order(0.3, "mL").decide(policies)    # 3 mg / 20 kg = 0.15 mg/kg

    dose = decision.dose
    assert dose.status == "above-maximum" and dose.limit == "0.12 mg/kg per dose maximum"
    # Not the maximum: taking the fix must not draw a "starting dose above range" warning.
    assert (dose.proposed.dose_mg, dose.proposed.volume_ml, dose.proposed.mg_per_kg) == (1.6, 0.16, 0.08)
    assert "starting range" in dose.proposed.rule
    hit = next(f for f in decision.label_findings if f.id == "dose-above-maximum")
    assert hit.severity == "critical" and hit.evidence[1].reference == "Observation/wt-2025-02b"


def test_overdose_when_continuing_proposes_at_most_the_maximum(policies):
    decision = chart_20kg().prior_mecasermin("2024-06-01").draft_order(0.3, "mL").decide(policies)

    dose = decision.dose
    assert dose.setting == "continuing" and dose.status == "above-maximum"
    assert (dose.proposed.dose_mg, dose.proposed.volume_ml, dose.proposed.mg_per_kg) == (2.4, 0.24, 0.12)
    assert "0.12" in dose.proposed.rule


def test_corrected_dose_is_rounded_down_to_0_1_mg(policies):
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", 23.3).prior_mecasermin("2024-06-01")
    decision = chart.draft_order(3.5, "mg").decide(policies)              # 0.150 mg/kg

    proposed = decision.dose.proposed
    assert proposed.dose_mg == 2.7                                          # 0.12 × 23.3 = 2.796 → 2.7
    assert proposed.volume_ml == 0.27 and proposed.mg_per_kg == pytest.approx(0.1159, abs=0.0001)


@pytest.mark.parametrize("prior", [False, True], ids=["new start", "continuing"])
def test_just_above_the_maximum_is_flagged_and_says_so(policies, prior):
    """2.0 mg for 16.6 kg is 0.12048 mg/kg: above 0.12, whatever rounding to 3 decimals says."""
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", 16.6)
    if prior:
        chart.prior_mecasermin("2024-06-01")
    decision = chart.draft_order(2.0, "mg").decide(policies)

    dose = decision.dose
    assert dose.status == "above-maximum" and dose.mg_per_kg_text == "0.1205"
    assert "0.1205 mg/kg" in dose.message and "within" not in dose.message
    assert any(f.id == "dose-above-maximum" and f.severity == "critical" for f in decision.label_findings)
    # The fix never exceeds the limit it fixes: 0.08 × 16.6 = 1.328 → 1.3 mg; 0.12 × 16.6 = 1.992 → 1.9 mg.
    assert decision.dose.proposed.dose_mg == (1.9 if prior else 1.3)


@pytest.mark.parametrize("mg, kg, status", [
    (1.2, 15.0, "ok"),                  # exactly 0.08 mg/kg: the top of the starting range is in it
    (0.6, 15.0, "ok"),                  # exactly 0.04 mg/kg: not below it
    (2.3, 57.5, "ok"),                  # exactly 0.04, though 2.3 / 57.5 is 0.039999999999999994 in floats
    (4.6, 57.5, "ok"),                  # exactly 0.08 (0.07999999999999999 in floats)
    (1.21, 15.0, "above-start-range"),  # 0.0807
    (0.59, 15.0, "below-range"),
])
def test_starting_range_limits_are_exact(policies, mg, kg, status):
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", kg)
    assert chart.draft_order(mg, "mg").decide(policies).dose.status == status


@pytest.mark.parametrize("mg, kg", [(1.8, 15.0), (2.7, 22.5), (6.9, 57.5)])
def test_exactly_the_maximum_is_within_the_limit_when_continuing(policies, mg, kg):
    # 0.12 mg/kg exactly; 1.8 / 15.0 is 0.12000000000000001 in binary floating point.
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", kg).prior_mecasermin("2024-06-01")
    dose = chart.draft_order(mg, "mg").decide(policies).dose
    assert dose.status == "ok" and "within the label limit" in dose.message and dose.proposed is None
    assert dose.mg_per_kg_text == "0.12"


def test_0_083_mg_per_kg_is_not_shown_as_0_08_above_0_08(policies):
    chart = laron_boy().drop("Observation/wt-2025-02").weight("wt-1", "2025-02-24", 15.6)
    dose = chart.draft_order(1.3, "mg").decide(policies).dose                 # 0.0833 mg/kg
    assert dose.status == "above-start-range"
    assert dose.message.startswith("1.3 mg per dose = 0.083 mg/kg for 15.6 kg is above the starting range")
    assert "0.08 mg/kg is above" not in dose.message
    assert dose.limit == "0.04–0.08 mg/kg starting range"


def _timing(chart, timing: dict):
    chart.order["dosageInstruction"][0]["timing"] = timing
    return chart


@pytest.mark.parametrize("timing", [
    {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
    {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
    {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "TID"}]}},
], ids=["3 per day", "q8h", "TID code"])
def test_three_times_a_day_is_checked_per_dose_and_per_day(policies, timing):
    # Continuing at 0.1 mg/kg per dose: within the per-dose maximum, 0.3 mg/kg/day above 0.24.
    chart = _timing(chart_20kg().prior_mecasermin("2024-06-01").draft_order(2.0, "mg"), timing)
    decision = chart.decide(policies)

    dose = decision.dose
    assert dose.per_day == 3 and dose.status == "above-daily-maximum"
    assert dose.limit == "0.24 mg/kg per day maximum" and dose.mg_per_kg_per_day_text == "0.3"
    daily = next(f for f in decision.label_findings if f.id == "dose-above-daily-maximum")
    assert daily.severity == "critical" and "0.3 mg/kg per day" in daily.message
    assert not any(f.id == "dose-frequency" for f in decision.label_findings)    # one finding, not two
    # The fix keeps the ordered dose and gives it twice daily.
    assert (dose.proposed.dose_mg, dose.proposed.per_day) == (2.0, 2)


@pytest.mark.parametrize("mg, critical", [(2.2, True), (1.8, False)])
def test_every_10_hours_is_checked_per_day_at_2_4_doses_a_day(policies, mg, critical):
    # 2.2 mg / 20 kg = 0.11 mg/kg × 2.4 = 0.264 mg/kg/day (above 0.24); 1.8 mg → 0.216 (within).
    chart = _timing(chart_20kg().prior_mecasermin("2024-06-01").draft_order(mg, "mg"),
                    {"repeat": {"frequency": 1, "period": 10, "periodUnit": "h"}})
    decision = chart.decide(policies)
    ids = [f.id for f in decision.label_findings if f.category == "dose"]
    if critical:
        assert decision.dose.status == "above-daily-maximum" and ids == ["dose-above-daily-maximum"]
        assert "0.264 mg/kg per day" in decision.dose.message and "2.4 times a day" in decision.dose.message
    else:
        assert decision.dose.status == "ok" and ids == ["dose-frequency"]   # stated, just not twice daily
        assert "1 per 10 h" in decision.label_findings[[f.id for f in decision.label_findings].index("dose-frequency")].message


def test_three_times_a_day_at_exactly_the_daily_maximum_is_only_a_frequency_warning(policies):
    chart = chart_20kg().prior_mecasermin("2024-06-01").draft_order(1.6, "mg", per_day=3)   # 0.08 × 3 = 0.24
    decision = chart.decide(policies)
    assert decision.dose.status == "ok"
    assert [f.id for f in decision.label_findings if f.category == "dose"] == ["dose-frequency"]


def test_new_start_three_times_a_day_above_both_limits_is_fixed_into_the_starting_range(policies):
    decision = chart_20kg().draft_order(2.0, "mg", per_day=3).decide(policies)     # 0.1 per dose, 0.3 per day
    dose = decision.dose
    assert dose.status == "above-daily-maximum"          # the critical limit wins the headline
    assert (dose.proposed.dose_mg, dose.proposed.per_day) == (1.6, 2)
    ids = [f.id for f in decision.label_findings if f.category == "dose"]
    assert ids == ["dose-above-daily-maximum", "dose-above-start-range"]   # the card lists both limits


def test_the_label_file_sets_the_limits_the_step_and_the_concentration(tmp_path):
    """Edit a copy of label.yaml: the check, the fix and its volume follow it."""
    import yaml

    from service.policy import load_policies
    from service.policy.loader import DEFAULT_LABEL_FILE

    data = yaml.safe_load(DEFAULT_LABEL_FILE.read_text())
    data["dosing"].update(maximum_mg_per_kg=0.1, concentration_mg_per_ml=20, measurable_step_ml=0.01)
    label = tmp_path / "label.yaml"
    label.write_text(yaml.safe_dump(data, allow_unicode=True))
    edited = load_policies(default_policy="fda-label", label_file=label)

    chart = chart_20kg().weight("wt-1", "2025-02-25", 23.3).prior_mecasermin("2024-06-01")
    dose = chart.draft_order(2.5, "mg").decide(edited).dose        # 0.107 mg/kg: above the edited 0.1
    assert dose.status == "above-maximum" and dose.limit == "0.1 mg/kg per dose maximum"
    # 0.1 × 23.3 = 2.33 mg → rounded down to a 0.2 mg step (0.01 mL of 20 mg/mL) = 2.2 mg = 0.11 mL
    assert (dose.proposed.dose_mg, dose.proposed.volume_ml, dose.proposed.concentration_mg_per_ml) == (2.2, 0.11, 20)


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
    assert decision.dose.proposed.dose_mg == 1.6          # a new start: the top of the starting range


def test_no_order_means_no_dose_finding(policies):
    decision = laron_boy(order=False).decide(policies)
    assert decision.dose is None
    assert decision.criterion("diagnosis").status == "met"    # from the problem list


@pytest.mark.parametrize("repeat", [
    {"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"},        # "one to three times a day"
    {"frequency": 1, "period": 8, "periodMax": 24, "periodUnit": "h"},          # "every 8 to 24 hours"
])
def test_a_timing_range_is_checked_at_its_most_frequent(policies, repeat):
    # 2.0 mg / 20 kg = 0.1 mg/kg per dose: up to 3 doses a day is 0.3 mg/kg/day, above the 0.24 maximum.
    chart = _timing(chart_20kg().prior_mecasermin("2024-06-01").draft_order(2.0, "mg"), {"repeat": repeat})
    decision = chart.decide(policies)
    assert decision.dose.status == "above-daily-maximum", decision.dose.message
    assert "0.3 mg/kg per day" in decision.dose.message
