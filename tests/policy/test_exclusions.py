"""Not medically necessary / investigational uses, read as docs/clinical-rules.md says: the order's reason says what
is treated; a secondary cause beside a qualifying diagnosis needs documentation; GH alongside is a
combination."""
from __future__ import annotations

import pytest

from tests.policy.charts import PATIENT_REF, Chart, laron_boy


def only(decision):
    assert len(decision.exclusions) == 1, decision.exclusions
    return decision.exclusions[0]


def test_idiopathic_short_stature_on_the_order_is_not_medically_necessary(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.draft_order(0.9, "mg", reasons=[], reason_text="Idiopathic short stature, parents request treatment")
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.kind, exclusion.effect, exclusion.basis) == (
        "idiopathic-short-stature", "not-medically-necessary", "does-not-meet", "order-reason")
    assert exclusion.evidence[0].reference == "MedicationRequest/draft-increlex#reasonCode"
    assert decision.determination == "does-not-meet" and decision.sub_reason == "not-medically-necessary"
    assert decision.criterion("diagnosis").status == "not_met"


def test_gh_deficiency_as_the_order_reason_is_investigational(policies):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-ghd", "icd10", "E23.0", "Hypopituitarism", text="Growth hormone deficiency")
    chart.draft_order(0.9, "mg", reasons=[("icd10", "E23.0", "Hypopituitarism")])
    decision = chart.decide(policies)

    exclusion = next(e for e in decision.exclusions if e.basis == "order-reason")
    assert (exclusion.id, exclusion.kind, exclusion.effect) == ("gh-deficiency", "investigational", "does-not-meet")
    assert exclusion.matched == "E23.0 Hypopituitarism"
    assert decision.determination == "does-not-meet" and decision.sub_reason == "investigational"


def test_turner_syndrome_as_the_only_short_stature_diagnosis_is_investigational(policies):
    chart = Chart(birth_date="2016-08-15", sex="female").coverage()
    chart.condition("cond-turner", "icd10", "Q96.9", "Turner's syndrome, unspecified",
                    extra_coding=("snomed", "38804009", "Turner syndrome"))
    chart.height("ht-1", "2025-01-20", 108.0).weight("wt-1", "2025-01-20", 18.2)
    chart.draft_order(1.0, "mg", reasons=[])                  # no reason on the order: the chart decides
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect, exclusion.basis) == ("turner", "does-not-meet", "sole-diagnosis")
    assert {e.code for e in exclusion.evidence} == {"Q96.9", "38804009"}
    assert decision.sub_reason == "investigational"


def test_q87_19_counts_as_noonan_only_when_the_diagnosis_names_noonan(policies):
    noonan = laron_boy().drop("Condition/cond-laron")
    noonan.condition("cond-q87", "icd10", "Q87.19", "Noonan syndrome")
    noonan.draft_order(0.9, "mg", reasons=[("icd10", "Q87.19", "Noonan syndrome")])
    decided = noonan.decide(policies)
    assert only(decided).id == "noonan" and decided.sub_reason == "investigational"

    other = laron_boy().drop("Condition/cond-laron")
    other.condition("cond-q87", "icd10", "Q87.19",
                    "Other congenital malformation syndromes predominantly associated with short stature")
    other.draft_order(0.9, "mg", reasons=[("icd10", "Q87.19", "Other congenital malformation syndromes "
                                                              "predominantly associated with short stature")])
    decided = other.decide(policies)
    assert decided.exclusions == ()
    assert decided.determination == "documentation-needed"    # diagnosis unknown, not investigational


def test_hypothyroidism_beside_a_qualifying_diagnosis_needs_documentation(policies):
    chart = laron_boy().condition("cond-hypo", "icd10", "E03.9", "Hypothyroidism, unspecified", onset="2023-05-09")
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect, exclusion.basis) == ("hypothyroidism", "documentation-needed", "recorded")
    assert all(c.status == "met" for c in decision.criteria)
    assert decision.determination == "documentation-needed"
    assert any("Hypothyroidism" in r for r in decision.reasons)


def test_resolved_or_differential_secondary_causes_do_not_count(policies):
    chart = laron_boy()
    chart.condition("cond-hypo", "icd10", "E03.9", "Hypothyroidism, unspecified", status="resolved")
    chart.condition("cond-ghd", "icd10", "E23.0", "Hypopituitarism", verification="differential")
    decision = chart.decide(policies)

    assert decision.exclusions == ()
    assert decision.determination == "meets-criteria"


def test_chronic_oral_prednisolone_beside_a_qualifying_diagnosis_needs_documentation(policies):
    chart = laron_boy().medication("pred-1", "prednisoLONE 15 mg/5 mL oral solution", rxnorm="312615",
                                   route=("26643006", "Oral route"), dose_text="10 mg by mouth daily")
    chart.medication("flut-1", "fluticasone 44 mcg/actuation inhaler", route=("447694001", "Respiratory tract route"))
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect) == ("chronic-corticosteroids", "documentation-needed")
    assert [e.reference for e in exclusion.evidence] == ["MedicationRequest/pred-1"]   # the inhaler is local
    assert decision.determination == "documentation-needed"


PREDNISOLONE = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312617",
                             "display": "prednisolone 15 MG/5 ML Oral Solution"}]}


def _monthly_dispenses(chart, handed_over, days=30):
    for n, day in enumerate(handed_over):
        chart.add({"resourceType": "MedicationDispense", "id": f"md-pred-{n}", "status": "completed",
                   "medicationCodeableConcept": PREDNISOLONE, "subject": PATIENT_REF,
                   "whenHandedOver": day, "daysSupply": {"value": days, "unit": "days",
                                                         "system": "http://unitsofmeasure.org", "code": "d"}})
    return chart


def test_monthly_steroid_refills_are_one_chronic_course(policies):
    """Five 30-day dispenses back to back (the last still current on TODAY 2025-03-03): each alone is a
    month, together four and a half months of prednisolone — chronic therapy, not a short course."""
    chart = _monthly_dispenses(laron_boy(), ["2024-10-20", "2024-11-19", "2024-12-21", "2025-01-18", "2025-02-17"])
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect) == ("chronic-corticosteroids", "documentation-needed")
    assert decision.determination == "documentation-needed"


def test_a_steroid_course_months_after_the_last_one_is_not_joined_to_it(policies):
    """A month of prednisolone last summer and another now: two short courses, not chronic therapy."""
    chart = _monthly_dispenses(laron_boy(), ["2024-06-01", "2025-02-17"])
    decision = chart.decide(policies)

    assert decision.exclusions == ()
    assert decision.determination == "meets-criteria"


def _steroid_statement(chart, start, end=None, status="active"):
    period = {"start": start, **({"end": end} if end else {})}
    return chart.add({"resourceType": "MedicationStatement", "id": "ms-pred", "status": status,
                      "medicationCodeableConcept": PREDNISOLONE, "subject": PATIENT_REF, "effectivePeriod": period})


@pytest.mark.parametrize("start,end,status", [
    ("2024-12", "2025-03", "active"),      # 1 December to 31 March at most, 31 December to 1 March at least
    ("2024-12", None, "active"),           # since 1 to 31 December: three months by TODAY (2025-03-03), or not yet
])
def test_partial_dates_that_leave_a_steroid_course_either_side_of_three_months_need_documentation(
        policies, start, end, status):
    chart = _steroid_statement(laron_boy(), start, end, status)
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect) == ("chronic-corticosteroids", "documentation-needed")
    assert "partial date" in exclusion.explanation


def test_partial_dates_that_decide_the_same_way_on_every_day_are_used(policies):
    # June 2024 to June 2025 is at least eleven months, whichever days they were.
    decision = _steroid_statement(laron_boy(), "2024-06", "2025-06", "active").decide(policies)
    assert [(e.id, e.effect, "partial date" in e.explanation) for e in decision.exclusions] == [
        ("chronic-corticosteroids", "documentation-needed", False)]


def test_active_somatropin_alongside_is_an_investigational_combination(policies):
    chart = laron_boy().medication("gh-1", "Norditropin FlexPro 10 mg/1.5 mL pen (somatropin)", status="active",
                                   authored="2024-11-04", route=("34206005", "Subcutaneous route"))
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.kind, exclusion.effect, exclusion.basis) == (
        "combination-with-gh", "investigational", "does-not-meet", "medication")
    assert exclusion.evidence[0].reference == "MedicationRequest/gh-1"
    assert decision.determination == "does-not-meet" and decision.sub_reason == "investigational"
    label = next(f for f in decision.label_findings if f.id == "concurrent-somatropin")
    assert label.severity == "warning" and "not a substitute" in label.message


def test_stopped_somatropin_is_history_not_a_combination(policies):
    chart = laron_boy().medication("gh-1", "Genotropin 5 mg cartridge (somatropin)", status="stopped",
                                   authored="2022-03-01")
    decision = chart.decide(policies)

    assert decision.exclusions == ()
    assert not any(f.id == "concurrent-somatropin" for f in decision.label_findings)
    assert decision.determination == "meets-criteria"


def test_diabetes_as_the_indication_is_investigational_but_as_a_comorbidity_is_an_interaction(policies):
    off_label = laron_boy().drop("Condition/cond-laron")
    off_label.draft_order(0.9, "mg", reasons=[("icd10", "E10.9", "Type 1 diabetes mellitus without complications")])
    decided = off_label.decide(policies)
    assert only(decided).id == "diabetes" and decided.sub_reason == "investigational"

    comorbid = laron_boy().condition("cond-t1d", "icd10", "E10.9", "Type 1 diabetes mellitus without complications")
    comorbid.medication("ins-1", "insulin glargine 100 unit/mL pen (Lantus SoloStar)")
    decided = comorbid.decide(policies)
    assert decided.exclusions == ()
    assert decided.determination == "meets-criteria"
    interaction = next(f for f in decided.label_findings if f.id == "antidiabetic-agents")
    assert interaction.category == "interaction" and "hypoglycaemia" in interaction.message
    assert interaction.evidence[0].reference == "MedicationRequest/ins-1"


def test_order_giving_both_a_qualifying_diagnosis_and_a_secondary_cause_needs_documentation(policies):
    chart = laron_boy()
    chart.draft_order(0.9, "mg", reasons=[("icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
                                          ("icd10", "E44.0", "Moderate protein-calorie malnutrition")])
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.effect, exclusion.basis) == ("malnutrition", "documentation-needed", "order-reason")
    assert decision.determination == "documentation-needed"


@pytest.mark.parametrize("code, display, exclusion_id", [
    ("Q87.11", "Prader-Willi syndrome", "prader-willi"),
    ("N18.5", "Chronic kidney disease, stage 5", "chronic-renal-failure"),
    ("E84.0", "Cystic fibrosis with pulmonary manifestations", "cystic-fibrosis"),
    ("E43", "Unspecified severe protein-calorie malnutrition", "malnutrition"),
    ("F50.01", "Anorexia nervosa, restricting type", "anorexia-nervosa"),
    ("G12.21", "Amyotrophic lateral sclerosis", "als"),
    ("S06.2X6A", "Diffuse traumatic brain injury with loss of consciousness greater than 24 hours without return to "
                 "pre-existing conscious level with patient surviving, initial encounter", "severe-head-injury"),
    ("E03.1", "Congenital hypothyroidism without goiter", "hypothyroidism"),
    ("E89.0", "Postprocedural hypothyroidism", "hypothyroidism"),
    ("E06.3", "Autoimmune thyroiditis", "hypothyroidism"),
    ("E02", "Subclinical iodine-deficiency hypothyroidism", "hypothyroidism"),
    ("E10.9", "Type 1 diabetes mellitus without complications", "diabetes"),
    ("E13.9", "Other specified diabetes mellitus without complications", "diabetes"),
    ("E08.9", "Diabetes mellitus due to underlying condition without complications", "diabetes"),
])
def test_each_listed_indication_on_the_order_is_investigational(policies, code, display, exclusion_id):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.draft_order(0.9, "mg", reasons=[("icd10", code, display)])
    decision = chart.decide(policies)

    exclusion = only(decision)
    assert (exclusion.id, exclusion.kind, exclusion.effect, exclusion.basis) == (
        exclusion_id, "investigational", "does-not-meet", "order-reason")
    assert exclusion.evidence[0].code == code
    assert decision.determination == "does-not-meet" and decision.sub_reason == "investigational"


def test_an_indication_only_condition_on_the_problem_list_is_not_an_exclusion(policies):
    chart = laron_boy().condition("cond-obesity", "icd10", "E66.9", "Obesity, unspecified")
    decision = chart.decide(policies)
    assert decision.exclusions == () and decision.determination == "meets-criteria"


def test_cystic_fibrosis_recorded_beside_laron_syndrome_needs_documentation(policies):
    chart = laron_boy().condition("cond-cf", "icd10", "E84.9", "Cystic fibrosis, unspecified")
    exclusion = only(chart.decide(policies))
    assert (exclusion.id, exclusion.effect) == ("cystic-fibrosis", "documentation-needed")
