"""Acronyms and short words count only where the context makes the sense unambiguous: a table of the
collisions the audit found (ALS, ALL, ISS, DI, GHD, …), read as an order's reason or a Condition's text."""
from __future__ import annotations

import pytest

from tests.policy.charts import PATIENT_REF, laron_boy

PRIMARY_IGFD = ("Acid-labile subunit (ALS) deficiency", "IGFALS deficiency")


@pytest.mark.parametrize("reason, exclusion", [
    ("Acid-labile subunit (ALS) deficiency", None),          # IGFALS defect: a primary IGF-1 deficiency
    ("IGFALS deficiency", None),
    ("ALS", "als"),
    ("als", None),                                           # lower case is not the acronym
    ("Amyotrophic lateral sclerosis", "als"),
    ("ISS", "idiopathic-short-stature"),
    ("Head trauma, injury severity score (ISS) 25", None),
    ("Idiopathic short stature", "idiopathic-short-stature"),
    ("GHD", "gh-deficiency"),
    ("Growth hormone deficiency", "gh-deficiency"),
    ("Diabetes insipidus, central", None),
    ("Central DI on desmopressin", None),
    ("Type 1 diabetes", "diabetes"),
    ("T1DM", "diabetes"),
    ("ESRD on dialysis", "chronic-renal-failure"),
    ("Obesity", None),                                       # postmenopausal women only
    ("HIV wasting syndrome", "aids-wasting"),
    ("Concussion", None),
    ("Severe traumatic brain injury", "severe-head-injury"),
])
def test_reason_text_collisions(policies, reason, exclusion):
    chart = laron_boy().drop("Condition/cond-laron")
    chart.draft_order(0.9, "mg", reasons=[], reason_text=reason)
    decision = chart.decide(policies)
    found = {e.id for e in decision.exclusions}
    assert found == ({exclusion} if exclusion else set()), (reason, found)
    if reason in PRIMARY_IGFD:
        assert decision.criterion("diagnosis").status == "met"


def condition_text(chart, text):
    return chart.add({
        "resourceType": "Condition", "id": "cond-t",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"text": text}, "subject": PATIENT_REF, "recordedDate": "2024-05-02"})


@pytest.mark.parametrize("text, malignancy", [
    ("ALL", True),
    ("B-ALL", True),
    ("T-ALL, relapse 2023", True),
    ("HISTORY OF ALL", True),
    ("AML (FAB M2)", True),
    ("CML, chronic phase", True),
    ("all growth parameters low", False),
    ("ALL GROWTH PARAMETERS BELOW THE THIRD CENTILE", False),
    ("Allergic rhinitis", False),
    ("ALL ruled out", False),
    ("Family history of AML", False),
])
def test_malignancy_abbreviation_collisions(policies, text, malignancy):
    decision = condition_text(laron_boy(), text).decide(policies)
    critical = {f.id for f in decision.label_findings if f.severity == "critical"}
    assert ("malignancy" in critical) is malignancy, (text, critical)
