"""The adaptive questionnaire on the demo charts: it asks only what the chart lacks, and the answers
move the determination exactly as the policy's criteria do for the same facts in the chart."""
from __future__ import annotations

import copy

import pytest

from service.dtr import DtrError, next_question
from service.dtr.adaptive import decide
from tests.conftest import TODAY
from tests.dtr.flow import EXPECTED, POLICIES, answers, demo_chart, determination, walk
from tests.dtr.profiles import (adaptive_questionnaire_problems, package_bundle_problems,
                                questionnaire_response_problems, r4_valid)
from service.dtr import questionnaire_package

ASKED = {"demo-no-bone-age": ["q-bone-age"], "demo-igf1-no-range": ["q-igf1"]}


@pytest.mark.parametrize("patient_id", sorted(EXPECTED))
def test_each_demo_chart_is_asked_only_what_it_lacks(patient_id):
    chart, order = demo_chart(patient_id)
    steps, asked = walk(chart, order)
    assert asked == ASKED.get(patient_id, [])
    # Unanswered, the questionnaire ends where the chart alone does.
    assert determination(steps[-1]) == EXPECTED[patient_id]["determination"]
    # A chart without a Coverage (the DTR operations require one) cannot name it.
    uncovered = ["qr-context: no Coverage"] if not any(r["resourceType"] == "Coverage" for r in chart) else []
    for qr in steps:
        assert questionnaire_response_problems(qr) == uncovered
        r4_valid(qr)


@pytest.mark.parametrize("patient_id", sorted(EXPECTED))
def test_package_bundle_fits_the_dtr_profiles(patient_id):
    chart, order = demo_chart(patient_id)
    bundle = questionnaire_package(chart, order, POLICIES, TODAY)
    assert package_bundle_problems(bundle) == []
    r4_valid(bundle)
    shell = bundle["entry"][0]["resource"]
    assert adaptive_questionnaire_problems(shell) == []
    assert "item" not in shell                      # the shell: the response's contained copy grows


BONE_AGE = {"date": {"valueDate": "2026-11-02"}}


@pytest.mark.parametrize("years, result", [
    (6.5, "meets-criteria"),
    (14.9, "meets-criteria"),
    (15.0, "does-not-meet"),      # the policy: bone age < 15 (male); 15.0 is not below it
    (15.5, "does-not-meet"),
])
def test_bone_age_answer_decides_as_the_policy_says(years, result):
    chart, order = demo_chart("demo-no-bone-age")
    steps, _ = walk(chart, order, lambda link: answers(link, value={"valueDecimal": years}, **BONE_AGE))
    assert determination(steps[-1]) == result


@pytest.mark.parametrize("value, result", [(19, "meets-criteria"), (150, "does-not-meet")])
def test_igf1_with_its_reference_range_decides_as_the_policy_says(value, result):
    chart, order = demo_chart("demo-igf1-no-range")
    given = dict(value={"valueDecimal": value}, low={"valueDecimal": 64}, high={"valueDecimal": 345},
                 date={"valueDate": "2026-10-01"})
    steps, _ = walk(chart, order, lambda link: answers(link, **given))
    assert determination(steps[-1]) == result


def test_a_quantity_in_the_items_unit_is_read_like_a_decimal():
    chart, order = demo_chart("demo-no-bone-age")
    steps, _ = walk(chart, order, lambda link: answers(
        link, value={"valueQuantity": {"value": 6.5, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}},
        **BONE_AGE))
    assert determination(steps[-1]) == "meets-criteria"


def test_an_answer_decides_exactly_like_the_same_fact_in_the_chart():
    """No parallel logic: the bone age answered in the form and the same bone age filed as an Observation
    give the same determination, criterion by criterion."""
    chart, order = demo_chart("demo-no-bone-age")
    for years in (6.5, 15.0):
        steps, _ = walk(chart, order, lambda link: answers(link, value={"valueDecimal": years}, **BONE_AGE))
        filed = {"resourceType": "Observation", "id": "filed-bone-age", "status": "final",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "85151-9"}]},
                 "subject": order["subject"], "effectiveDateTime": "2026-11-02",
                 "valueQuantity": {"value": years, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}}
        _, in_chart = decide(chart + [filed], order, TODAY, POLICIES)
        assert determination(steps[-1]) == in_chart.determination
        assert steps[-1]["item"][-1]["item"][1]["answer"][0]["valueString"] == in_chart.summary


def test_an_unanswered_question_is_not_asked_again():
    chart, order = demo_chart("demo-no-bone-age")
    steps, asked = walk(chart, order)
    assert asked == ["q-bone-age"] and [g["linkId"] for g in steps[-1]["item"]] == ["on-file", "q-bone-age", "determination"]
    assert determination(steps[-1]) == "documentation-needed"
    assert steps[-1]["status"] == "completed"


def test_chart_facts_arrive_answered_read_only_with_their_evidence():
    chart, order = demo_chart("demo-laron-icd10")
    qr = walk(chart, order)[0][0]
    group = qr["contained"][0]["item"][0]
    assert group["linkId"] == "on-file" and group["readOnly"] is True
    assert all(i.get("readOnly") for i in group["item"] if i["type"] != "display")
    answered = {i["linkId"]: i["answer"][0] for i in qr["item"][0]["item"]}
    assert {a["valueCoding"]["code"] for a in answered.values()} == {"met"}
    igf1 = {c["linkId"]: c["answer"] for c in answered["on-file.igf1"]["item"]}
    assert "17 ng/mL" in igf1["on-file.igf1.evidence"][0]["valueString"]
    assert " on 20" in igf1["on-file.igf1.evidence"][0]["valueString"]          # with its date
    assert igf1["on-file.igf1.source"][0]["valueReference"]["reference"].startswith("Observation/")


def test_nothing_is_asked_once_a_criterion_is_not_met():
    """The bone age is missing, but a normal IGF-1 already fails the policy: no answer could change that."""
    chart, order = demo_chart("demo-no-bone-age")
    chart = copy.deepcopy(chart)
    igf1 = next(r for r in chart if r["resourceType"] == "Observation"
                and any(c.get("code") == "2484-4" for c in r["code"]["coding"]))
    igf1["valueQuantity"]["value"] = 300
    steps, asked = walk(chart, order)
    assert asked == [] and determination(steps[-1]) == "does-not-meet"


def test_a_limit_the_plan_has_not_published_is_shown_not_asked():
    chart, order = demo_chart("demo-laron-aetna")
    steps, asked = walk(chart, order)
    assert asked == []
    on_file = {i["linkId"]: i["answer"][0] for i in steps[-1]["item"][0]["item"]}
    for criterion in ("height", "igf1", "gh-stimulation"):
        answer = on_file[f"on-file.{criterion}"]
        assert answer["valueCoding"]["code"] == "unknown"
        assert "plan" in answer["item"][0]["answer"][0]["valueString"]


def _with_condition(chart, code, display, system="http://hl7.org/fhir/sid/icd-10-cm"):
    condition = {"resourceType": "Condition", "id": f"extra-{code}", "subject": chart[0].get("subject") or
                 {"reference": next(r for r in chart if r["resourceType"] == "Patient")["id"]},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                    "code": "confirmed"}]},
                 "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display}}
    return chart + [condition]


@pytest.mark.parametrize("status, result", [("ruled-out", "meets-criteria"), ("current", "documentation-needed")])
def test_a_recorded_secondary_cause_ruled_out_is_read_as_refuted(status, result):
    chart, order = demo_chart("demo-laron-icd10")
    chart = _with_condition(chart, "E03.9", "Hypothyroidism, unspecified")
    reason = "Normal TSH and free T4 <script>alert(1)</script> **twice**"
    steps, asked = walk(chart, order, lambda link: answers(
        link, status={"valueCoding": {"code": status}}, reason={"valueString": reason}))
    assert asked == ["q-hypothyroidism"]
    assert determination(steps[-1]) == result
    answered = {i["linkId"]: i["answer"][0] for i in steps[-1]["item"][1]["item"]}
    assert answered["q-hypothyroidism.reason"]["valueString"] == reason      # data, kept as sent
    assert "<script>" not in steps[-1]["contained"][0]["text"]["div"]


def test_gh_gene_deletion_asks_for_the_neutralising_antibodies():
    """Isolated GH deficiency type IA counts only with neutralising anti-GH antibodies documented: the
    question that records them (a confirmed Condition in the policy's words) is asked, and a yes meets."""
    chart, order = demo_chart("demo-laron-icd10")
    order = copy.deepcopy(order)
    order.pop("reasonCode", None)
    order.pop("reasonReference", None)
    chart = [r for r in chart if r["resourceType"] != "Condition"]
    chart = _with_condition(chart, "71003000", "Isolated growth hormone deficiency type IA", "http://snomed.info/sct")
    steps, asked = walk(chart, order, lambda link: answers(link, documented={"valueBoolean": True},
                                                                 date={"valueDate": "2026-03-04"}))
    assert asked == ["q-diagnosis"]
    assert determination(steps[-1]) == "meets-criteria"
    steps, _ = walk(chart, order, lambda link: answers(link, documented={"valueBoolean": False}))
    assert determination(steps[-1]) == "documentation-needed"       # a no documents nothing


def _first_question(patient_id="demo-no-bone-age"):
    chart, order = demo_chart(patient_id)
    steps, _ = walk(chart, order, limit=2)
    return chart, order, steps[-1]


@pytest.mark.parametrize("items, problem", [
    ([{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 6.5}]}], "q-bone-age.date is required"),
    ([{"linkId": "q-bone-age.value", "answer": [{"valueString": "six"}]}], "must be a valueDecimal"),
    ([{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 6.5}]},
      {"linkId": "q-bone-age.date", "answer": [{"valueDate": "2027-01-01"}]}], "in the future"),
    ([{"linkId": "q-bone-age.date", "answer": [{"valueDate": "02/11/2026"}]}], "full date"),
    ([{"linkId": "q-bone-age.colour", "answer": [{"valueString": "x"}]}], "has no item"),
    ([{"linkId": "q-igf1.value", "answer": [{"valueDecimal": 1}]}], "is not an item of q-bone-age"),
    ([{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": 1}, {"valueDecimal": 2}]}], "one answer expected"),
    ([{"linkId": "q-bone-age.value", "answer": [{"valueQuantity": {"value": 80, "code": "mo"}}]}], "exact value in a"),
    ([{"linkId": "q-bone-age.value", "answer": [{"valueDecimal": float("nan")}]}], "not a finite number"),
])
def test_answers_that_do_not_fit_their_question_are_422(items, problem):
    chart, order, qr = _first_question()
    qr["item"][-1]["item"] = items
    with pytest.raises(DtrError) as caught:
        next_question(chart, order, POLICIES, qr, TODAY)
    assert caught.value.status == 422 and problem in caught.value.message
    assert caught.value.outcome()["issue"][0]["expression"]


@pytest.mark.parametrize("change, problem", [
    (lambda qr: qr.pop("contained"), "exactly one Questionnaire"),
    (lambda qr: qr.update(questionnaire="#other"), "reference the contained Questionnaire"),
    (lambda qr: qr["contained"][0].update(url="https://elsewhere.example/Questionnaire/x"), "not one of this service's"),
    (lambda qr: qr["item"].append({"linkId": "q-nonsense"}), "not a group of this questionnaire"),
    (lambda qr: qr["item"].append(copy.deepcopy(qr["item"][0])), "appears twice"),
])
def test_a_response_this_questionnaire_did_not_produce_is_422(change, problem):
    chart, order, qr = _first_question()
    change(qr)
    with pytest.raises(DtrError) as caught:
        next_question(chart, order, POLICIES, qr, TODAY)
    assert caught.value.status == 422 and problem in caught.value.message


def test_the_client_cannot_rewrite_what_the_chart_says():
    """The on-file group is rebuilt from the chart on every step: a client's edit of it is not echoed."""
    chart, order, qr = _first_question()
    qr["item"][0]["item"][0]["answer"][0]["valueCoding"]["code"] = "not_met"
    grown = next_question(chart, order, POLICIES, qr, TODAY)
    assert grown["item"][0]["item"][0]["answer"][0]["valueCoding"]["code"] == "met"
