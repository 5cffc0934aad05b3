"""Issue 22: the letter's conclusion, its header's diagnosis code and the growth chart's limit line
follow the determination and the policy in force."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from service.smart.chart import Point, growth_chart, limit_caption, policy_limit
from service.smart.packet import letter_framing
from tests.policy.charts import laron_boy

SVG = "{http://www.w3.org/2000/svg}"


def iss_chart():
    chart = laron_boy().drop("Condition/cond-laron")
    chart.condition("cond-iss", "icd10", "R62.52", "Short stature (child)", text="Idiopathic short stature")
    return chart.draft_order(0.9, "mg", reasons=[("icd10", "R62.52", "Short stature (child)")],
                             reason_text="Idiopathic short stature")


def test_a_qualifying_chart_asks_for_approval_and_names_the_code(policies):
    words = letter_framing(laron_boy().decide(policies))
    assert words.asks_approval and "I ask that it be approved for 12 months" in words.conclusion
    assert words.opening == "I am asking the plan to approve" and words.diagnosis_code == "E34.321"
    assert "polysorbate 20" in words.safety and "sodium acetate" in words.safety and not words.to_confirm


def test_idiopathic_short_stature_does_not_ask_for_approval(policies):
    decision = iss_chart().decide(policies)
    words = letter_framing(decision)
    assert decision.determination == "does-not-meet" and not words.asks_approval
    assert "not medically necessary" in words.conclusion and "does not ask for approval" in words.conclusion
    assert "approve" not in words.opening and words.diagnosis_code is None
    assert decision.recommended_icd10 is None          # no coding help on an ISS chart


def test_a_contraindication_stops_the_request(policies):
    chart = laron_boy().condition("cond-all", "snomed", "91857003", "Acute lymphoid leukemia", text="B-ALL",
                                  status="resolved")
    decision = chart.decide(policies)
    words = letter_framing(decision)
    assert decision.determination == "meets-criteria"          # coverage is answered on its own
    assert not words.asks_approval and "contraindication" in words.conclusion


def test_an_open_label_warning_is_listed_not_denied(policies):
    chart = laron_boy().add({
        "resourceType": "Condition", "id": "cond-q",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"text": "Possible lymphoma, awaiting biopsy"},
        "subject": {"reference": "Patient/pt-48d1e0"}})
    words = letter_framing(chart.decide(policies))
    assert words.to_confirm and "No contraindication to mecasermin is recorded" not in words.safety


def test_documentation_needed_asks_once_the_items_are_documented(policies):
    decision = laron_boy().drop("Observation/ba-2024-12").decide(policies)
    words = letter_framing(decision)
    assert decision.determination == "documentation-needed"
    assert words.asks_approval and words.conclusion.startswith("Once the items listed above are documented")


@pytest.mark.parametrize("policy_id, z, label", [
    ("premera-mecasermin", -2.25, "policy limit (\u22122.25 SD)"),
    ("fda-label", -3.0, "label limit (\u22123.0 SD)"),
])
def test_the_chart_draws_the_limit_of_the_policy_in_force(policies, policy_id, z, label):
    limit = policy_limit(policies.get(policy_id).versions[-1])
    assert (limit.z, limit.label) == (z, label)
    svg = str(growth_chart("male", [Point(6.4, 100.4, None, -3.4, 0.03)], 6.5, limit))
    root = ET.fromstring(svg)
    (line,) = [p for p in root.iter(f"{SVG}path") if p.get("class", "").startswith("threshold")]
    assert float(line.get("data-z")) == pytest.approx(z) and label in svg and label in limit_caption(limit)


def test_no_limit_line_when_the_policys_limit_is_unknown(policies):
    assert all(policy_limit(v) is None for v in policies.get("aetna-cpb-0711").versions)
    svg = str(growth_chart("male", [Point(6.4, 100.4, None)], 6.5, None))
    root = ET.fromstring(svg)
    assert not [p for p in root.iter(f"{SVG}path") if p.get("class", "").startswith("threshold")]
    assert "not known" in limit_caption(None) and "2.25" not in svg


def test_the_gh_threshold_is_shown_as_an_assumption(policies):
    for policy_id in ("premera-mecasermin", "fda-label"):
        criterion = laron_boy().decide(policies, policy_id=policy_id).criterion("gh-stimulation")
        assert "assumption" in criterion.threshold and "10 ug/L" in criterion.threshold


def test_a_dose_above_the_label_maximum_stops_the_request_as_the_page_does(policies):
    """The page marks the letter NOT TO BE SENT for every critical finding (service/smart/present.py);
    the letter's own framing must not ask for approval of an order the label forbids either."""
    decision = laron_boy().draft_order(5.0, "mg").decide(policies)
    assert decision.dose.status == "above-maximum" and decision.determination == "meets-criteria"
    words = letter_framing(decision)
    assert not words.asks_approval and "approve" not in words.opening
    assert "dose above the label maximum" in words.conclusion
