"""Scenario tests for the clinical review's findings (mg/kg orders, frequency, malignancy text,
negated text, the 71003000 rule under every policy, age rounding, wording)."""
from __future__ import annotations

import math

import pytest

from tests.policy.charts import PATIENT_REF, UNII, Chart, laron_boy


def finding(decision, finding_id):
    matches = [f for f in decision.label_findings if f.id == finding_id]
    assert matches, [f.id for f in decision.label_findings]
    return matches[0]


def ids(decision):
    return {f.id for f in decision.label_findings}


def text_condition(chart: Chart, cond_id: str, text: str, status: str = "active") -> Chart:
    """A problem-list Condition with free text only (no coding), as EHRs store uncoded entries."""
    return chart.add({
        "resourceType": "Condition", "id": cond_id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": status}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "code": {"text": text}, "subject": PATIENT_REF, "recordedDate": "2024-05-02",
    })


def no_weight():
    return laron_boy().drop("Observation/wt-2025-02")


# ------------------------------------------------------------------ 1. orders written in mg/kg

def test_mg_per_kg_order_without_a_weight_is_still_checked_and_flagged_critical(policies):
    decision = no_weight().draft_order(0.2, "mg/kg", ucum="mg/kg").decide(policies)

    dose = decision.dose
    assert dose.status == "above-maximum" and dose.mg_per_kg == pytest.approx(0.2)
    assert dose.proposed is None and dose.dose_mg is None          # no mg dose without a weight
    hit = finding(decision, "dose-above-maximum")
    assert hit.severity == "critical" and "0.2 mg/kg" in hit.message and "weight" in hit.message
    assert "dose-unchecked" not in ids(decision)


def test_mg_per_kg_order_with_a_stale_weight_is_checked_but_proposes_no_mg_dose(policies):
    chart = no_weight().weight("wt-old", "2024-10-01", 15.1)
    decision = chart.draft_order(0.2, "mg/kg", ucum="mg/kg").decide(policies)

    assert decision.dose.status == "above-maximum" and decision.dose.proposed is None
    hit = finding(decision, "dose-above-maximum")
    assert hit.severity == "critical" and "2024-10-01" in hit.message and "90 days" in hit.message


def test_mg_per_kg_order_within_the_start_range_is_ok_whatever_the_weight(policies):
    decision = no_weight().draft_order(0.06, "mg/kg", ucum="mg/kg").decide(policies)
    assert decision.dose.status == "ok" and decision.dose.mg_per_kg == pytest.approx(0.06)
    assert not any(f.category == "dose" for f in decision.label_findings)


def test_mg_order_without_a_weight_still_cannot_be_checked(policies):
    decision = no_weight().draft_order(0.9, "mg").decide(policies)
    assert decision.dose.status == "unknown"
    assert "cannot be checked" in finding(decision, "dose-unchecked").message


# ----------------------------------------------------------------------------- 2. frequency

def chart_20kg():
    return laron_boy().drop("Observation/wt-2025-02").weight("wt-2025-02b", "2025-02-24", 20.0)


def test_three_times_daily_above_0_24_mg_per_kg_per_day_is_critical(policies):
    decision = chart_20kg().draft_order(2.0, "mg", per_day=3).decide(policies)   # 0.1 × 3 = 0.3 mg/kg/day

    hit = finding(decision, "dose-above-daily-maximum")
    assert hit.severity == "critical" and "hypoglycaemia" in hit.message and "0.3 mg/kg per day" in hit.message
    assert "dose-frequency" not in ids(decision)


def test_four_times_daily_mg_per_kg_order_above_the_daily_maximum_is_critical_without_a_weight(policies):
    decision = no_weight().draft_order(0.07, "mg/kg", ucum="mg/kg", per_day=4).decide(policies)
    assert finding(decision, "dose-above-daily-maximum").severity == "critical"


def test_three_times_daily_within_the_daily_total_stays_a_warning(policies):
    decision = chart_20kg().draft_order(1.2, "mg", per_day=3).decide(policies)   # 0.06 × 3 = 0.18 mg/kg/day
    assert finding(decision, "dose-frequency").severity == "warning"
    assert "dose-above-daily-maximum" not in ids(decision)


def test_once_daily_stays_a_warning(policies):
    decision = chart_20kg().draft_order(2.0, "mg", per_day=1).decide(policies)
    assert finding(decision, "dose-frequency").severity == "warning"


# ---------------------------------------------------------------------- 3. malignancy in words

@pytest.mark.parametrize("text, which", [
    ("Neuroblastoma, stage 4, treated 2021", "Active malignancy"),
    ("Acute lymphoblastic leukaemia in remission", "History of malignancy"),
    ("Wilms tumour (right kidney), nephrectomy 2020", "Active malignancy"),
    ("History of medulloblastoma", "History of malignancy"),
    ("B-ALL", "Active malignancy"),
    ("Pre-B ALL, end of maintenance 2022", "Active malignancy"),
])
def test_a_malignancy_named_in_the_conditions_own_words_is_critical(policies, text, which):
    decision = text_condition(laron_boy(), "cond-onc", text).decide(policies)

    hit = finding(decision, "malignancy")
    assert hit.severity == "critical" and hit.title == which
    assert hit.evidence[0].reference == "Condition/cond-onc" and text in hit.message
    assert "possible-malignancy" not in ids(decision)


@pytest.mark.parametrize("text", [
    "Possible lymphoma — awaiting biopsy",
    "? neuroblastoma on ultrasound",
    "Suspected Wilms tumour",
    "Melanoma in situ, excised",
])
def test_a_malignancy_only_mentioned_is_a_possible_malignancy_warning(policies, text):
    decision = text_condition(laron_boy(), "cond-onc", text).decide(policies)

    hit = finding(decision, "possible-malignancy")
    assert hit.severity == "warning" and "confirm before prescribing" in hit.message
    assert hit.title == "Possible malignancy" and hit.evidence[0].reference == "Condition/cond-onc"
    assert "malignancy" not in ids(decision)


def test_a_provisional_malignancy_code_is_a_warning_not_a_contraindication(policies):
    chart = laron_boy().condition("cond-aml", "snomed", "91861009", "Acute myeloid leukemia",
                                  verification="provisional")
    decision = chart.decide(policies)
    assert finding(decision, "possible-malignancy").severity == "warning"
    assert "malignancy" not in ids(decision)


@pytest.mark.parametrize("code, display", [
    ("432328008", "Neuroblastoma of adrenal gland"),
    ("91857003", ""),                      # coded only, no display
    ("302849000", "Nephroblastoma"),
])
def test_malignancy_coded_in_snomed_ct_is_critical(policies, code, display):
    chart = laron_boy().condition("cond-nb", "snomed", code, display)
    hit = finding(chart.decide(policies), "malignancy")
    assert hit.severity == "critical"


@pytest.mark.parametrize("text", [
    "Osteoblastoma of the femur, excised",           # benign -blastoma
    "ALL GROWTH PARAMETERS BELOW THE THIRD CENTILE",  # 'ALL' as an English word in capitals
    "Reviewed all systems, no concerns",
    "Leukemoid reaction after infection",
    "Li-Fraumeni cancer predisposition syndrome",
    "Premalignant lesion not seen",
])
def test_words_that_only_look_like_a_malignancy_are_not_one(policies, text):
    decision = text_condition(laron_boy(), "cond-x", text).decide(policies)
    assert not {"possible-malignancy", "malignancy"} & ids(decision)


@pytest.mark.parametrize("text", [
    "Family history of cancer (maternal grandmother)",
    "No evidence of malignancy on MRI",
    "Cancer screening discussed",
    "Leukaemia ruled out",
    "Lymphoma excluded by biopsy",
])
def test_negated_family_or_screening_mentions_are_not_a_possible_malignancy(policies, text):
    decision = text_condition(laron_boy(), "cond-x", text).decide(policies)
    assert not {"possible-malignancy", "malignancy"} & ids(decision)


def test_coded_malignancy_stays_critical_and_is_not_repeated_as_a_warning(policies):
    chart = laron_boy().condition("cond-c", "icd10", "C71.6", "Malignant neoplasm of cerebellum",
                                  text="Medulloblastoma, cerebellum")
    decision = chart.decide(policies)
    assert finding(decision, "malignancy").severity == "critical"
    assert finding(decision, "malignancy").title == "Active malignancy"
    assert "possible-malignancy" not in ids(decision)


# --------------------------------------------------------------------- 4. negated text

def type_ia_girl(text: str) -> Chart:
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-ia", "snomed", "71003000", "Isolated growth hormone deficiency type IA", text=text)
    return chart.draft_order(0.9, "mg", reasons=[("snomed", "71003000", "Isolated growth hormone deficiency type IA")])


@pytest.mark.parametrize("text", [
    "GH1 gene deletion; anti-GH antibodies not detected",
    "GH1 deletion, neutralizing anti-GH antibodies negative",
    "GH1 deletion - anti-GH antibodies absent",
    "GH1 gene deletion with no neutralizing antibodies",
])
def test_negated_antibody_text_does_not_document_the_antibodies(policies, text):
    decision = type_ia_girl(text).decide(policies)
    diagnosis = decision.criterion("diagnosis")
    assert diagnosis.status == "unknown" and "no neutralising anti-GH antibodies" in diagnosis.explanation


def test_documented_antibodies_still_qualify(policies):
    decision = type_ia_girl("GH1 gene deletion; neutralizing anti-GH antibodies detected 2022").decide(policies)
    assert decision.criterion("diagnosis").status == "met"
    assert not decision.exclusions


@pytest.mark.parametrize("text", ["Idiopathic short stature ruled out", "Short stature, not idiopathic short stature",
                                  "ISS excluded after genetic testing"])
def test_negated_exclusion_text_is_not_an_exclusion(policies, text):
    decision = text_condition(laron_boy(), "cond-ss", text).decide(policies)
    assert not decision.exclusions and decision.determination == "meets-criteria"


# ------------------------------------------------------- 5. 71003000 under every policy file

@pytest.mark.parametrize("policy_id", ["premera-mecasermin", "aetna-cpb-0711", "fda-label"])
def test_type_ia_display_is_never_read_as_gh_deficiency(policies, policy_id):
    decision = type_ia_girl("GH1 gene deletion").decide(policies, policy_id=policy_id)

    assert not any(e.id == "gh-deficiency" for e in decision.exclusions)
    assert decision.criterion("diagnosis").status == "unknown"       # antibodies not documented


def test_every_policy_with_a_gh_deficiency_exclusion_has_the_type_ia_rule(policies):
    for policy in (version for policy_file in policies.policies for version in policy_file.versions):
        spec = next(c for c in policy.initial if c["type"] == "diagnosis")
        if any(e.id == "gh-deficiency" for e in policy.exclusions):
            assert any("71003000" in r["match"].get("snomed", ()) for r in spec.get("conditional", ())), policy.id


# ------------------------------------------------------------------------ 6. age rounding

def test_age_1_997_years_is_under_2_in_the_criterion_and_the_label(policies):
    chart = Chart(birth_date="2023-03-04")               # 1.997 y on 2025-03-03
    chart.condition("cond-1", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-1", "2025-02-10", 78.0).weight("wt-1", "2025-02-10", 9.4).draft_order(0.5, "mg")
    decision = chart.decide(policies)

    age = decision.criterion("age")
    assert age.status == "not_met" and "1 y 11 mo" in age.explanation
    hit = finding(decision, "age-under-minimum")
    assert hit.severity == "critical" and "1 y 11 mo" in hit.message and hit.title == "Under 2 years old"


# ------------------------------------------------------------------------------ 7. wording

def test_every_safety_finding_has_a_short_title(policies):
    chart = laron_boy().allergy("alg-2", {"coding": [{"system": UNII, "code": "LKG8494WBH"}]})
    chart.xray_report("dr-1", "2025-02-03", "Bone age 16 years. The epiphyses are fused.")
    chart.condition("cond-c", "icd10", "Z85.841", "Personal history of malignant neoplasm of brain")
    chart.medication("gh-1", "Norditropin FlexPro 10 mg/1.5 mL pen (somatropin)")
    chart.draft_order(0.9, "mg", route=("47625008", "Intravenous route"), per_day=1)
    decision = chart.decide(policies)

    titles = {f.id: f.title for f in decision.label_findings if f.category != "monitoring"}
    assert titles["hypersensitivity-benzyl-alcohol"] == "Allergy to benzyl alcohol"
    assert titles["closed-epiphyses"] == "Closed epiphyses"
    assert titles["malignancy"] == "History of malignancy"
    assert titles["intravenous-route"] == "Intravenous route"
    assert all(title and len(title) <= 40 for title in titles.values()), titles


def test_coded_allergy_without_text_reads_cleanly(policies):
    chart = laron_boy().allergy("alg-2", {"coding": [{"system": UNII, "code": "LKG8494WBH"}]})
    hit = finding(chart.decide(policies), "hypersensitivity-benzyl-alcohol")
    assert "()" not in hit.message and "no date" not in hit.message
    assert "2024-06-18" in hit.message and "AllergyIntolerance/alg-2" in hit.message
    assert hit.evidence[0].value and hit.evidence[0].display == "benzyl alcohol"


def test_turner_beside_a_qualifying_diagnosis_asks_how_primary_igfd_was_established(policies):
    chart = laron_boy(order=False).condition("cond-t", "icd10", "Q96.9", "Turner's syndrome, unspecified")
    exclusion = next(e for e in chart.decide(policies).exclusions if e.id == "turner")
    assert exclusion.effect == "documentation-needed"
    assert exclusion.explanation.endswith(
        "is also recorded; the plan will ask how severe primary IGF-1 deficiency was established despite it.")
    assert "rather than caused by it" not in exclusion.explanation


def test_secondary_cause_beside_a_qualifying_diagnosis_keeps_the_cause_wording(policies):
    chart = laron_boy(order=False).condition("cond-h", "icd10", "E03.9", "Hypothyroidism, unspecified")
    exclusion = next(e for e in chart.decide(policies).exclusions if e.id == "hypothyroidism")
    assert "rather than caused by it" in exclusion.explanation


def test_exclusion_titles_keep_the_case_of_igf_1(policies):
    chart = laron_boy(order=False).drop("Condition/cond-laron")
    chart.condition("cond-h", "icd10", "E03.9", "Hypothyroidism, unspecified")
    exclusion = next(e for e in chart.decide(policies).exclusions if e.id == "hypothyroidism")
    assert "secondary IGF-1 deficiency" in exclusion.explanation and "igf-1" not in exclusion.explanation


def test_less_severe_note_only_when_not_met_and_reporting_limit_explained_when_unknown(policies):
    chart = laron_boy().drop("Observation/igf1-2024-12").igf1("igf1-2025-01", "2025-01-15", 30.0, comparator="<")
    igf1 = chart.decide(policies).criterion("igf1")

    assert igf1.status == "unknown"
    assert "less severe" not in igf1.explanation.lower()
    assert "reporting limit" in igf1.explanation
    low, high = 39.0, 191.0
    at = math.exp((math.log(low) + math.log(high)) / 2 - 3 * (math.log(high) - math.log(low)) / 4)
    assert f"{at:.1f}".rstrip("0").rstrip(".") in igf1.explanation and "-3 SD corresponds" in igf1.explanation


def test_bone_age_just_under_13_is_not_shown_as_13(policies):
    chart = laron_boy().drop("Observation/ba-2024-12").bone_age("ba-2025-01", "2025-01-20", 12.99)
    girl = Chart(sex="female")
    girl.resources[1:] = chart.resources[1:]
    bone_age = girl.decide(policies).criterion("bone-age")
    assert bone_age.status == "met" and "Bone age 12.99 y" in bone_age.explanation


def test_combination_with_gh_says_to_discontinue_somatropin_first(policies):
    chart = laron_boy().medication("gh-1", "Norditropin FlexPro 10 mg/1.5 mL pen (somatropin)")
    exclusion = next(e for e in chart.decide(policies).exclusions if e.id == "combination-with-gh")
    assert exclusion.explanation.endswith("If somatropin is being stopped, discontinue that order before signing.")
