"""Which policy applies (coverage payer, default, requested), the unverified second payer, and
technical gaps (FHIR queries that failed)."""
from __future__ import annotations

import pytest

from service.policy import UnknownPolicy
from service.policy.context import gap_resource_types
from tests.policy.charts import laron_boy


def test_no_coverage_uses_the_fda_label_as_default(policies):
    decision = laron_boy(coverage=False).decide(policies)

    assert decision.policy.id == "fda-label" and decision.policy.kind == "label"
    assert decision.policy_choice.reason == "default"
    assert "no active coverage" in decision.policy_choice.detail
    assert [c.id for c in decision.criteria] == ["diagnosis", "age", "height", "igf1", "gh-stimulation"]
    assert decision.determination == "meets-criteria"
    assert decision.approval_months is None


def test_label_thresholds_are_stricter_than_the_plan_for_height(policies):
    chart = laron_boy(coverage=False).drop("Observation/ht-2025-01").height("ht-2025-01b", "2025-01-15", 102.8)
    decision = chart.decide(policies)                      # SDS about -2.7: meets the plan, not the label

    assert decision.criterion("height").status == "not_met"
    assert "\u2264 \u22123.0" in decision.criterion("height").threshold
    assert chart.decide(policies, policy_id="premera-mecasermin").criterion("height").status == "met"


def test_unknown_payer_falls_back_to_the_default_and_says_why(policies):
    decision = laron_boy(coverage=False).coverage("Regence BlueShield", plan="Regence Innova").decide(policies)

    assert decision.policy.id == "fda-label"
    assert decision.policy_choice.reason == "default"
    assert decision.policy_choice.payer == "Regence BlueShield"
    assert "no policy file matches payer Regence BlueShield" in decision.policy_choice.detail


def test_premera_medicare_advantage_plan_is_outside_the_premera_policy(policies):
    chart = laron_boy(coverage=False).coverage("Premera Blue Cross", plan="Premera Blue Cross Medicare Advantage")
    decision = chart.decide(policies)

    assert decision.policy.id == "fda-label"
    assert "does not apply to plan Premera Blue Cross Medicare Advantage" in decision.policy_choice.detail


def test_cancelled_coverage_is_not_used(policies):
    decision = laron_boy(coverage=False).coverage(status="cancelled").decide(policies)
    assert decision.policy.id == "fda-label"


def test_explicitly_requested_policy_wins_over_coverage(policies):
    decision = laron_boy().decide(policies, policy_id="fda-label")
    assert decision.policy.id == "fda-label" and decision.policy_choice.reason == "requested"
    with pytest.raises(UnknownPolicy, match="no policy 'cigna'"):
        laron_boy().decide(policies, policy_id="cigna")


def test_second_payer_criteria_are_unknown_verify_with_the_plan(policies):
    chart = laron_boy(coverage=False).coverage("Aetna Life Insurance Company", plan="Aetna Choice POS II")
    decision = chart.decide(policies)

    assert decision.policy.id == "aetna-cpb-0711"
    assert decision.policy.verified is False and "2025-09-26" in decision.policy.verification_note
    assert decision.criterion("diagnosis").status == "met"
    for criterion_id in ("height", "igf1", "gh-stimulation"):
        criterion = decision.criterion(criterion_id)
        assert criterion.status == "unknown", criterion_id
        assert "verify with the plan" in criterion.explanation
        assert criterion.missing_test is None               # the data are on file; only the limit is unknown
        assert criterion.evidence                           # and shown
    assert decision.determination == "documentation-needed"
    assert decision.approval_months is None
    assert any("unverified" in reason for reason in decision.reasons)
    assert decision.missing_tests == ()


def test_second_payer_still_asks_for_missing_tests_and_applies_its_exclusions(policies):
    chart = laron_boy(coverage=False).coverage("Aetna Life Insurance Company").drop("Observation/igf1-2024-12")
    decision = chart.decide(policies)
    assert decision.missing_tests == ("igf1",)

    diabetic = laron_boy(coverage=False).coverage("Aetna").drop("Condition/cond-laron")
    diabetic.draft_order(0.9, "mg", reasons=[("icd10", "E11.9", "Type 2 diabetes mellitus without complications")])
    decided = diabetic.decide(policies)
    assert decided.determination == "does-not-meet" and decided.sub_reason == "investigational"


def test_failed_observation_query_makes_measurement_criteria_unknown_and_technical(policies):
    gaps = ("observations: the FHIR server answered HTTP 503",)
    decision = laron_boy().decide(policies, technical_gaps=gaps)

    assert decision.technical is True and decision.technical_gaps == gaps
    assert decision.criterion("diagnosis").status == "met"              # from the order, not the failed query
    for criterion_id in ("height", "igf1", "gh-stimulation", "bone-age"):
        criterion = decision.criterion(criterion_id)
        assert criterion.status == "unknown" and criterion.missing_test is None
        assert "could not be fetched" in criterion.explanation
        assert criterion.evidence                                        # what was on file is still shown
    assert decision.determination == "documentation-needed"
    assert decision.missing_tests == ()
    assert any(f.id == "label-checks-incomplete" for f in decision.label_findings)


def test_failed_condition_query_keeps_measurements_but_flags_the_decision(policies):
    chart = laron_boy().draft_order(0.9, "mg", reasons=[])
    decision = chart.decide(policies, technical_gaps=("conditions: no answer before the deadline",))

    assert decision.criterion("height").status == "met"
    assert decision.criterion("diagnosis").status == "unknown"
    assert decision.technical and decision.determination == "documentation-needed"


def test_gap_strings_name_prefetch_keys_or_queries():
    assert gap_resource_types(("observations: HTTP 503", "Condition?patient=x&_count=100: timeout")) == {
        "Observation", "Condition"}
    assert gap_resource_types(("medications: not prefetched and no FHIR server may be called",)) == {"MedicationRequest"}
    assert gap_resource_types(("something went wrong",)) == {"*"}          # unknown: assume everything


def test_unreadable_gap_makes_every_criterion_unknown(policies):
    decision = laron_boy().decide(policies, technical_gaps=("the FHIR server refused the token",))
    assert {c.status for c in decision.criteria if c.id != "diagnosis"} == {"unknown"}
    assert decision.criterion("diagnosis").status == "met"                 # the order itself names E34.321


def test_empty_record_gives_documentation_needed_not_an_error(policies):
    from service.record.model import PatientRecord
    from tests.policy.charts import TODAY
    from service.policy import evaluate

    decision = evaluate(PatientRecord(today=TODAY, patient=None), policies, TODAY)
    assert decision.policy.id == "fda-label" and decision.determination == "documentation-needed"
    assert {c.status for c in decision.criteria} == {"unknown"}
    assert decision.dose is None
    assert any(f.id == "age-unknown" for f in decision.label_findings)


def test_chart_without_a_patient_resource(policies):
    chart = laron_boy()
    chart.resources = [r for r in chart.resources if r["resourceType"] != "Patient"]
    decision = chart.decide(policies)
    assert decision.criterion("height").status == "unknown"          # no birth date: no SDS
    assert decision.criterion("bone-age").status == "unknown"        # no sex: no limit
    assert decision.determination == "documentation-needed"
