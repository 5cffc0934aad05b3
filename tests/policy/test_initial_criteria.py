"""Initial authorization under the primary plan policy: each criterion met, not met and unknown.

Every scenario is a FHIR Bundle that goes through build_record and evaluate, as in the service.
"""
from __future__ import annotations

import pytest

from tests.policy.charts import Chart, laron_boy


def statuses(decision):
    return {c.id: c.status for c in decision.criteria}


def test_laron_boy_meets_every_criterion_with_evidence(policies):
    decision = laron_boy().decide(policies)

    assert decision.policy.id == "premera-mecasermin"
    assert decision.policy_choice.reason == "coverage-payer"
    assert decision.authorization == "initial"
    assert statuses(decision) == {"diagnosis": "met", "height": "met", "igf1": "met",
                                  "gh-stimulation": "met", "bone-age": "met"}
    assert decision.determination == "meets-criteria" and decision.sub_reason is None
    assert decision.approval_months == 12
    assert decision.recommended_icd10 == "E34.321" and decision.hcpcs == "J2170"
    assert decision.missing_tests == () and decision.exclusions == ()

    height = decision.criterion("height").evidence[0]
    assert (height.value, height.unit, height.reference) == (99.8, "cm", "Observation/ht-2025-01")
    assert height.date.isoformat() == "2025-01-15" and height.sds == pytest.approx(-3.41, abs=0.02)
    igf1 = decision.criterion("igf1").evidence[0]
    assert (igf1.value, igf1.unit, igf1.sds) == (18.0, "ng/mL", pytest.approx(-3.95, abs=0.01))
    gh = decision.criterion("gh-stimulation").evidence[0]
    assert (gh.value, gh.unit, gh.original_value, gh.original_unit) == (24.5, "ug/L", 24.5, "ng/mL")
    assert decision.criterion("bone-age").evidence[0].note == "method: Greulich and Pyle"
    assert any(e.reference == "MedicationRequest/draft-increlex#reasonCode" for e in decision.criterion("diagnosis").evidence)


def test_height_sds_above_minus_1_88_is_not_met(policies):
    chart = laron_boy().drop("Observation/ht-2025-01").height("ht-2025-01b", "2025-01-15", 109.7)
    decision = chart.decide(policies)

    height = decision.criterion("height")
    assert height.status == "not_met"
    assert height.evidence[0].sds == pytest.approx(-1.5, abs=0.02)
    assert decision.determination == "does-not-meet" and decision.sub_reason == "criteria-not-met"
    assert "Height" in decision.summary


def test_height_between_3rd_centile_and_minus_2_25_is_not_met_and_shows_the_centile(policies):
    chart = laron_boy().drop("Observation/ht-2025-01").height("ht-2025-01b", "2025-01-15", 106.6)
    decision = chart.decide(policies)

    height = decision.criterion("height")
    evidence = height.evidence[0]
    assert evidence.sds == pytest.approx(-2.1, abs=0.02)
    assert 1.5 < evidence.centile < 2.2                      # below the 3rd centile, above -2.25 SD
    assert height.status == "not_met"
    assert "centile 1.8" in height.explanation
    assert "3rd centile" in height.explanation               # the policy's inconsistent wording is explained
    assert "centile 1.2" in height.threshold
    assert decision.determination == "does-not-meet"


def test_height_older_than_12_months_is_unknown_for_initial_authorization(policies):
    chart = laron_boy().drop("Observation/ht-2025-01")       # the remaining height is from 2024-01-10
    decision = chart.decide(policies)

    height = decision.criterion("height")
    assert height.status == "unknown"
    assert height.missing_test == "height"
    assert "2024-01-10" in height.explanation and "365 days" in height.explanation
    assert height.evidence[0].note == "SDS computed from the CDC 2000 stature-for-age table; too old to use"
    assert decision.determination == "documentation-needed"
    assert decision.missing_tests == ("height",)


def test_less_severe_igf1_deficiency_is_not_met(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 33.0)
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "not_met"
    assert igf1.evidence[0].sds == pytest.approx(-2.42, abs=0.01)
    assert "less severe" in igf1.explanation.lower()
    assert decision.determination == "does-not-meet" and decision.sub_reason == "criteria-not-met"


def test_igf1_below_detection_limit_decides_when_the_bound_is_low_enough(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 15.0, comparator="<")
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "met"                              # < 15 ng/mL is at most SDS -4.41
    assert igf1.evidence[0].comparator == "<"
    assert "at most -4.41" in igf1.explanation


def test_igf1_bound_that_cannot_decide_is_unknown(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 30.0, comparator="<")
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "unknown"                          # < 30 ng/mL is only "at most SDS -2.66"
    assert igf1.missing_test == "igf1"
    assert decision.determination == "documentation-needed"


def test_igf1_in_nmol_per_litre_is_converted(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 2.5, low=5.1, high=25.0,
                                                             unit="nmol/L")
    decision = chart.decide(policies)

    evidence = decision.criterion("igf1").evidence[0]
    assert evidence.original_value == 2.5 and evidence.original_unit == "nmol/L"
    assert evidence.value == pytest.approx(19.12, abs=0.01) and evidence.unit == "ng/mL"
    assert decision.criterion("igf1").status == "met"


def test_igf1_without_reference_range_is_unknown(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 18.0, low=None, high=None)
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "unknown" and igf1.missing_test == "igf1"
    assert "no reference range" in igf1.evidence[0].note


def test_reported_igf1_z_score_wins_over_the_range_on_the_same_day(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12")
    chart.igf1("igf1-2025-01", "2025-01-15", 36.0)           # range SDS would be -2.2
    chart.igf1_z("igf1z-2025-01", "2025-01-15", -3.4)       # the laboratory's own z-score
    decision = chart.decide(policies)

    igf1 = decision.criterion("igf1")
    assert igf1.status == "met"
    assert igf1.evidence[0].reference == "Observation/igf1z-2025-01"
    assert igf1.evidence[0].note == "reported IGF-1 z-score"


def test_gh_below_10_on_two_stimulation_tests_is_not_met(policies):
    chart = laron_boy().drop("Observation/gh-arg-2024-12")
    chart.gh("gh-arg", "2024-12-10", 6.2).gh("gh-clon", "2024-12-17", 7.9, display="Somatotropin --post clonidine")
    decision = chart.decide(policies)

    gh = decision.criterion("gh-stimulation")
    assert gh.status == "not_met"
    assert "peak of 2 stimulation tests is 7.9 ug/L" in gh.explanation
    assert [e.reference for e in gh.evidence] == ["Observation/gh-clon", "Observation/gh-arg"]
    assert decision.determination == "does-not-meet"


def test_gh_in_milli_international_units_is_converted(policies):
    chart = laron_boy().drop("Observation/gh-arg-2024-12").gh("gh-glucagon", "2024-12-10", 45.0, unit="mIU/L")
    decision = chart.decide(policies)

    gh = decision.criterion("gh-stimulation")
    assert gh.status == "met"
    assert gh.evidence[0].value == pytest.approx(15.0) and gh.evidence[0].original_unit == "mIU/L"


def test_only_a_baseline_gh_is_unknown(policies):
    chart = laron_boy().drop("Observation/gh-arg-2024-12")
    chart.gh("gh-basal", "2024-12-10", 3.1, code="12253-1", display="Somatotropin [Mass/volume] in Serum or Plasma --baseline")
    decision = chart.decide(policies)

    gh = decision.criterion("gh-stimulation")
    assert gh.status == "unknown" and gh.missing_test == "gh-stimulation"
    assert "baseline" in gh.explanation
    assert gh.evidence[0].note == "baseline (unstimulated) GH, not a stimulation test"


def test_girl_with_bone_age_13_5_does_not_meet_the_female_limit(policies):
    chart = Chart(birth_date="2012-05-02", sex="female")
    chart.condition("cond-1", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-1", "2025-01-28", 133.5).weight("wt-1", "2025-01-28", 29.0)
    chart.igf1("igf1-1", "2025-01-28", 40.0, low=143.0, high=693.0)
    chart.gh("gh-1", "2025-01-28", 17.0).bone_age("ba-1", "2025-01-28", 13.5)
    chart.coverage().draft_order(2.0, "mg")
    decision = chart.decide(policies)

    bone = decision.criterion("bone-age")
    assert bone.status == "not_met"
    assert "(female)" in bone.explanation and "< 13" in bone.explanation
    assert statuses(decision)["height"] == "met" and statuses(decision)["igf1"] == "met"
    assert decision.determination == "does-not-meet" and decision.sub_reason == "criteria-not-met"


def test_new_referral_with_only_a_diagnosis_and_height_lists_the_tests_to_order(policies):
    chart = laron_boy()
    for ref in ("Observation/igf1-2024-12", "Observation/gh-arg-2024-12", "Observation/ba-2024-12"):
        chart.drop(ref)
    decision = chart.decide(policies)

    assert statuses(decision) == {"diagnosis": "met", "height": "met", "igf1": "unknown",
                                  "gh-stimulation": "unknown", "bone-age": "unknown"}
    assert decision.determination == "documentation-needed"
    assert decision.missing_tests == ("igf1", "gh-stimulation", "bone-age")
    assert all(c.documentation_needed for c in decision.criteria if c.status == "unknown")
    assert len(decision.reasons) == 3


def test_legacy_e34_3_alone_leaves_the_diagnosis_unknown_and_suggests_e34_321(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-legacy", "icd10", "E34.3", "Short stature due to endocrine disorder", onset="2021-03-02")
    chart.draft_order(0.9, "mg", reasons=[("icd10", "E34.3", "Short stature due to endocrine disorder")])
    decision = chart.decide(policies)

    diagnosis = decision.criterion("diagnosis")
    assert diagnosis.status == "unknown"
    assert "2022-10-01" in diagnosis.explanation
    assert "E34.321" in diagnosis.documentation_needed
    assert decision.determination == "documentation-needed"
    assert decision.recommended_icd10 == "E34.321"
    assert "not been a billable code" in decision.coding_note


@pytest.mark.parametrize("code, display", [("E34.30", "Short stature due to endocrine disorder, unspecified"),
                                           ("R62.52", "Short stature (child)")])
def test_nonspecific_short_stature_codes_do_not_establish_the_diagnosis(policies, code, display):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-ss", "icd10", code, display)
    chart.draft_order(0.9, "mg", reasons=[("icd10", code, display)])
    decision = chart.decide(policies)

    diagnosis = decision.criterion("diagnosis")
    assert diagnosis.status == "unknown"
    assert f"{code} {display} does not establish" in diagnosis.explanation
    assert decision.determination == "documentation-needed"


def test_isolated_gh_deficiency_1a_without_documented_antibodies_is_unknown(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-igdh", "snomed", "71003000", "Isolated growth hormone deficiency type IA")
    chart.draft_order(0.9, "mg", reasons=[])
    decision = chart.decide(policies)

    diagnosis = decision.criterion("diagnosis")
    assert diagnosis.status == "unknown"
    assert "neutralising" in diagnosis.documentation_needed
    assert decision.exclusions == ()     # its display must not be read as "GH deficiency" (secondary cause)


def test_isolated_gh_deficiency_1a_with_documented_antibodies_qualifies(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-igdh", "snomed", "71003000", "Isolated growth hormone deficiency type IA",
                    text="GH1 gene deletion; neutralizing anti-GH antibodies documented 2023")
    chart.draft_order(0.9, "mg", reasons=[])
    decision = chart.decide(policies)

    diagnosis = decision.criterion("diagnosis")
    assert diagnosis.status == "met"
    assert any("antibodies" in (e.note or "") for e in diagnosis.evidence)
    assert decision.exclusions == ()
    assert "E34.321" in decision.coding_note             # SNOMED only on file: code the claim in ICD-10-CM


def test_provisional_qualifying_diagnosis_is_unknown(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-prov", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency",
                    verification="provisional")
    chart.draft_order(0.9, "mg", reasons=[])
    decision = chart.decide(policies)

    assert decision.criterion("diagnosis").status == "unknown"
    assert "provisional" in decision.criterion("diagnosis").explanation


def test_legacy_e34_3_on_the_order_beside_e34_321_on_file_needs_a_billable_code(policies):
    chart = laron_boy().draft_order(0.9, "mg", reasons=[("icd10", "E34.3", "Short stature due to endocrine disorder")])
    decision = chart.decide(policies)

    assert decision.criterion("diagnosis").status == "met"           # E34.321 is on the problem list
    assert decision.determination == "documentation-needed"
    assert any("E34.3 is not billable" in r for r in decision.reasons)
    assert "not billable" in decision.summary


def test_age_criterion_of_the_label(policies):
    chart = Chart(birth_date="2023-07-10")
    chart.condition("cond-1", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-1", "2025-02-10", 74.0).weight("wt-1", "2025-02-10", 8.9).draft_order(0.4, "mg")
    decision = chart.decide(policies)

    assert decision.policy.id == "fda-label"
    age = decision.criterion("age")
    assert age.status == "not_met" and age.evidence[0].value == pytest.approx(1.65, abs=0.01)
    assert decision.determination == "does-not-meet"


def test_reported_height_z_score_is_used_and_said_so(policies):
    chart = laron_boy().height_z("htz-2025-02", "2025-02-20", -2.9)
    height = chart.decide(policies).criterion("height")
    assert height.status == "met"
    assert height.evidence[0].reference == "Observation/htz-2025-02"
    assert height.evidence[0].note == "reported height-for-age SDS"


def test_reported_height_centile_is_read_as_an_sds(policies):
    chart = laron_boy().height_percentile("htp-2025-02", "2025-02-20", 2.5)    # 2.5th centile = SDS -1.96
    height = chart.decide(policies).criterion("height")
    assert height.status == "not_met"
    assert height.evidence[0].sds == pytest.approx(-1.96, abs=0.01)
    assert height.evidence[0].original_value == 2.5 and height.evidence[0].original_unit == "%"
    assert "centile" in height.evidence[0].note
