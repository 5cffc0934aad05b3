"""What payers write beyond the first two files: OR groups, a response against the child's own baseline,
the prescriber's specialty, dose and quantity limits, and medication categories as data.

The illustrative third payer (docs/examples/policies/quillfeather-mecasermin.yaml) supplies the
criteria; each test changes one thing in a chart shaped like EHR output.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from service.policy.context import Context, treatment_start
from dataclasses import replace

from service.policy.decision import MET, NOT_MET, UNKNOWN, Reason
from service.policy.dose_limits import dose_limit
from service.policy.evaluate import evaluate
from service.policy.groups import any_of
from service.policy.loader import (DEFAULT_LABEL_FILE, DEFAULT_POLICY_DIR, PolicyError, load_label, load_policy_file,
                                   policy_paths, policy_set_of)
from service.policy.prescriber import prescriber_specialty
from service.wording import word
from service.wording.word import word_criterion
from service.record import build_record, resources_from_bundle
from tests.policy.charts import NDC, PATIENT_REF, SNOMED, TODAY, UCUM, Chart, laron_boy

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policies" / "quillfeather-mecasermin.yaml"
NUCC = "http://nucc.org/provider-taxonomy"
PAYER = "Quillfeather Mutual Health"


def policy_set(*extra: Path, label_file: Path = DEFAULT_LABEL_FILE):
    files = [load_policy_file(p) for p in policy_paths(DEFAULT_POLICY_DIR)] + [load_policy_file(p) for p in extra]
    return policy_set_of(sorted(files, key=lambda f: f.id), DEFAULT_POLICY_DIR, label_file=label_file,
                         default_policy="fda-label")


@pytest.fixture(scope="module")
def policies():
    return policy_set(EXAMPLE)


def practitioner(pid: str = "pr-5521", **extra) -> dict:
    return {"resourceType": "Practitioner", "id": pid, "active": True,
            "name": [{"family": "Sorensen", "given": ["Anika"], "prefix": ["Dr"]}], **extra}


def role(rid: str = "role-5521", code: str | None = "2080P0205X", display: str = "Pediatric Endocrinology",
         pid: str = "pr-5521", **extra) -> dict:
    specialty = {"coding": [{"system": NUCC, "code": code, "display": display}]} if code else {"text": display}
    return {"resourceType": "PractitionerRole", "id": rid, "active": True,
            "practitioner": {"reference": f"Practitioner/{pid}"}, "specialty": [specialty], **extra}


def quill_boy(*roles: dict, doctor: bool = True) -> Chart:
    """The Laron boy of the other policy tests, insured by the illustrative payer, ordered for by Dr Sorensen."""
    chart = laron_boy(coverage=False)
    chart.coverage(PAYER, plan="Quillfeather Mutual Health PPO", cov_id="cov-q")
    if doctor:
        chart.add(practitioner())
    for r in roles or (role(),):
        chart.add(r)
    return chart


def criterion(chart: Chart, policies, cid: str, today: date = TODAY, **record):
    resources = resources_from_bundle(chart.bundle())
    rec = build_record(resources, chart.order, today, **record)
    return word(evaluate(rec, policies, today)).criterion(cid)


def judge(evaluator, spec: dict, chart: Chart, policies, today: date = TODAY, **record):
    """One evaluator on its own, for a clause the shipped example does not phrase (consultation: false)."""
    rec = build_record(resources_from_bundle(chart.bundle()), chart.order, today, **record)
    policy = policies.get("quillfeather-mecasermin").in_force(today)
    ctx = Context(rec, today, policy, policies.label, rec.reauthorization, treatment_start(rec), (), frozenset())
    return word_criterion(evaluator({"title": "the clause", "id": "clause", **spec}, ctx, "current"))


# --------------------------------------------------------------------------------- the third payer

def test_the_third_payer_is_chosen_by_its_coverage_and_applies_the_version_in_force(policies):
    decision = quill_boy().decide(policies)
    assert decision.policy.id == "quillfeather-mecasermin" and decision.policy.version.name == "2025-01"
    assert decision.determination == "meets-criteria", decision.reasons
    assert {c.id: c.status for c in decision.criteria} == {
        "diagnosis": MET, "height": MET, "igf1": MET, "gh-or-genetics": MET, "prescriber": MET, "dose-per-kg": MET}
    later = quill_boy()
    later.order["authoredOn"] = "2026-01-05"
    decision = later.decide(policies, today=date(2026, 1, 5))
    assert decision.policy.version.name == "2026-01" and decision.criterion("vials").status == MET


# ---------------------------------------------------------------------------------------- any_of

def _without_genetics(chart: Chart) -> Chart:
    condition = next(r for r in chart.resources if r.get("id") == "cond-laron")
    condition["code"]["text"] = "Primary IGF-1 deficiency"
    return chart


def test_an_or_group_is_met_by_any_alternative_and_keeps_each_result(policies):
    chart = _without_genetics(quill_boy())
    group = criterion(chart, policies, "gh-or-genetics")
    assert group.status == MET and [p.status for p in group.parts] == [MET, UNKNOWN]
    assert any(e.reference == "Observation/gh-arg-2024-12" for e in group.evidence)
    genetic = quill_boy().drop("Observation/gh-arg-2024-12")     # the condition says "GHR mutation"
    group = criterion(genetic, policies, "gh-or-genetics")
    assert group.status == MET and [p.status for p in group.parts] == [UNKNOWN, MET]


def test_an_or_group_is_not_met_only_when_every_alternative_is_not(policies):
    chart = _without_genetics(quill_boy()).drop("Observation/gh-arg-2024-12").gh("gh-low", "2024-12-10", 6.2)
    group = criterion(chart, policies, "gh-or-genetics")
    # The genetic alternative is a diagnosis criterion: without the wording it is unknown, not "not met".
    assert group.status == UNKNOWN and group.parts[0].status == NOT_MET
    assert "cannot be decided" in group.explanation and group.documentation_needed


def test_an_or_group_of_alternatives_all_not_met_is_not_met_with_each_reason(policies):
    chart = _without_genetics(quill_boy()).drop("Observation/gh-arg-2024-12").gh("gh-low", "2024-12-10", 6.2)
    low_gh = criterion(chart, policies, "gh-or-genetics").parts[0]
    assert low_gh.status == NOT_MET
    spec = {"id": "either", "title": "Either"}
    group = word_criterion(any_of(spec, (low_gh, replace(low_gh, id="again", title="Again"))))
    assert group.status == NOT_MET and "None of 2 alternatives" in group.explanation
    assert group.explanation.count("below the limit (>= 10 ug/L)") == 2 and group.documentation_needed is None
    assert group.threshold == f"{low_gh.threshold} or {low_gh.threshold}"
    met = replace(low_gh, status=MET, why=Reason("met", low_gh.why.facts))
    assert any_of(spec, (low_gh, met)).status == MET


def test_an_or_group_with_nothing_on_file_is_unknown_with_what_would_settle_it(policies):
    chart = _without_genetics(quill_boy()).drop("Observation/gh-arg-2024-12")
    group = criterion(chart, policies, "gh-or-genetics")
    assert group.status == UNKNOWN and group.missing_test == "gh-stimulation"
    assert "GH stimulation" in group.documentation_needed


# ---------------------------------------------------------------------------- velocity over baseline

def reauthorization_chart(pre: tuple[float, float], on: tuple[float, float], started: str = "2021-01-01") -> Chart:
    """Heights four years apart before and on treatment: 1461 days = 4 × 365.25, so a velocity is Δcm / 4."""
    chart = Chart(birth_date="2012-05-01")
    chart.condition("cond-laron", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
    chart.height("ht-pre-1", "2016-12-31", pre[0]).height("ht-pre-2", "2020-12-31", pre[1])
    chart.height("ht-on-1", "2021-01-01", on[0]).height("ht-on-2", "2025-01-01", on[1])
    chart.weight("wt-1", "2025-02-20", 25.0)
    chart.prior_mecasermin(started)
    chart.coverage(PAYER, plan="Quillfeather Mutual Health PPO", cov_id="cov-q").add(practitioner()).add(role())
    chart.draft_order(2.0, "mg")
    return chart


def test_a_gain_of_exactly_2_cm_per_year_over_baseline_is_met(policies):
    response = criterion(reauthorization_chart((100.0, 116.0), (116.5, 140.5)), policies, "response")
    assert response.status == MET, response.explanation          # 6 − 4 = 2 cm/year exactly
    assert response.evidence[0].value == 2.0 and "4 cm/year before, 2016-12-31 to 2020-12-31" in response.explanation


def test_a_gain_a_hair_below_2_cm_per_year_is_not_met_and_says_so_in_figures(policies):
    response = criterion(reauthorization_chart((100.0, 116.0), (116.5, 140.49)), policies, "response")
    assert response.status == NOT_MET                            # 1.9975 cm/year
    assert response.evidence[0].value_text == "1.998"


def test_without_two_heights_before_treatment_the_response_is_unknown(policies):
    chart = reauthorization_chart((100.0, 116.0), (116.5, 140.5)).drop("Observation/ht-pre-1")
    response = criterion(chart, policies, "response")
    assert response.status == UNKNOWN and response.reason == "no-value"
    assert "before treatment cannot be computed" in response.explanation and "2021-01-01" in response.explanation


def test_a_height_dated_only_to_a_month_is_not_paired_and_the_reason_says_so(policies):
    chart = reauthorization_chart((100.0, 116.0), (116.5, 140.5))
    next(r for r in chart.resources if r.get("id") == "ht-pre-1")["effectiveDateTime"] = "2016-12"
    response = criterion(chart, policies, "response")
    assert response.status == UNKNOWN
    assert any(e.reference == "Observation/ht-pre-1" and "partial date" in e.note for e in response.evidence)


def test_without_a_treatment_start_the_two_velocities_cannot_be_told_apart(policies):
    chart = reauthorization_chart((100.0, 116.0), (116.5, 140.5))
    del next(r for r in chart.resources if r.get("id") == "mecasermin-2024")["authoredOn"]
    response = criterion(chart, policies, "response")
    assert response.status == UNKNOWN and "start date" in response.explanation


def test_a_stale_latest_height_leaves_the_response_unknown(policies):
    response = criterion(reauthorization_chart((100.0, 116.0), (116.5, 140.5)), policies, "response",
                         today=date(2026, 3, 1))
    assert response.status == UNKNOWN and "more than 365 days old" in response.explanation


# ---------------------------------------------------------------------------------- the prescriber

def test_a_current_pediatric_endocrinology_role_meets_the_clause(policies):
    found = criterion(quill_boy(), policies, "prescriber")
    assert found.status == MET and "2080P0205X" in found.explanation
    assert found.evidence[0].reference == "PractitionerRole/role-5521"


def test_a_role_with_only_text_for_its_specialty_is_read_by_its_words(policies):
    found = criterion(quill_boy(role(code=None, display="Paediatric endocrinology clinic")), policies, "prescriber")
    assert found.status == MET and "read from the role's words" in found.explanation


def test_a_role_whose_period_ended_does_not_count(policies):
    ended = role(period={"start": "2019-01-01", "end": "2024-12-31"})
    found = criterion(quill_boy(ended), policies, "prescriber")
    assert found.status == UNKNOWN and found.reason == "no-value"
    assert "not current" in found.explanation and any("ended 2024-12-31" in (e.note or "") for e in found.evidence)


def test_an_inactive_role_does_not_count(policies):
    found = criterion(quill_boy(role(active=False)), policies, "prescriber")
    assert found.status == UNKNOWN and any("inactive" in (e.note or "") for e in found.evidence)


def test_a_role_ending_in_a_month_that_spans_today_is_undecided(policies):
    found = criterion(quill_boy(role(period={"end": "2025-03"})), policies, "prescriber")   # today 2025-03-03
    assert found.status == UNKNOWN and found.reason == "undecidable"


def test_another_specialty_needs_the_consultation_documented_or_fails_without_that_option(policies):
    pediatrician = quill_boy(role(code="208000000X", display="Pediatrics"))
    found = criterion(pediatrician, policies, "prescriber")
    assert found.status == UNKNOWN and found.reason == "consultation-not-documented"
    assert "208000000X Pediatrics" in found.explanation
    strict = judge(prescriber_specialty, {"type": "prescriber_specialty", "nucc": ["2080P0205X"]}, pediatrician, policies)
    assert strict.status == NOT_MET


def test_the_requester_may_name_a_practitioner_role_directly(policies):
    chart = quill_boy(role(), role("role-gp", code="208000000X", display="Pediatrics"))
    chart.order["requester"] = {"reference": "PractitionerRole/role-gp"}
    assert criterion(chart, policies, "prescriber").reason == "consultation-not-documented"


def test_a_practitioners_qualification_counts_like_a_role(policies):
    chart = quill_boy(role(code="208000000X", display="Pediatrics"), doctor=False)
    chart.add(practitioner(qualification=[{"code": {"coding": [{"system": NUCC, "code": "2080P0205X",
                                                                 "display": "Pediatric Endocrinology"}]}}]))
    found = criterion(chart, policies, "prescriber")
    assert found.status == MET and found.evidence[0].reference == "Practitioner/pr-5521#qualification[0]"


def test_snomed_specialty_codes_are_read_where_a_policy_lists_them(policies):
    chart = quill_boy({"resourceType": "PractitionerRole", "id": "role-5521", "practitioner": {"reference": "Practitioner/pr-5521"},
                       "specialty": [{"coding": [{"system": SNOMED, "code": "394583002", "display": "Endocrinology"}]}]})
    found = judge(prescriber_specialty, {"type": "prescriber_specialty", "snomed": ["394583002"]}, chart, policies)
    assert found.status == MET


def test_no_readable_role_is_unknown_with_the_reason(policies):
    assert "neither Practitioner/pr-5521" in criterion(quill_boy(doctor=False).drop("PractitionerRole/role-5521"),
                                                       policies, "prescriber").explanation
    coded_only = quill_boy({"resourceType": "PractitionerRole", "id": "role-5521", "practitioner": {"reference": "Practitioner/pr-5521"},
                            "specialty": [{"coding": [{"system": "urn:oid:1.2.3.4", "code": "ENDO-P"}]}]})
    assert "no current role or qualification states a specialty" in criterion(coded_only, policies, "prescriber").explanation
    organisation = quill_boy()
    organisation.order["requester"] = {"reference": "Organization/childrens"}
    assert "not a practitioner" in criterion(organisation, policies, "prescriber").explanation


def test_without_a_requester_the_hooks_user_is_the_prescriber(policies):
    chart = quill_boy()
    del chart.order["requester"]
    assert criterion(chart, policies, "prescriber").status == UNKNOWN
    assert criterion(chart, policies, "prescriber", user="Practitioner/pr-5521").status == MET


# ----------------------------------------------------------------------------- dose and quantity limits

def dose_chart(mg: float, kg: float = 15.6, per_day: int | None = 2) -> Chart:
    chart = quill_boy().drop("Observation/wt-2025-02").weight("wt-2025-02", "2025-02-20", kg)
    return chart.draft_order(mg, "mg", per_day=per_day)


def test_a_dose_of_exactly_the_plans_mg_per_kg_is_within_it(policies):
    assert criterion(dose_chart(1.872), policies, "dose-per-kg").status == MET        # 1.872 / 15.6 = 0.12


def test_a_dose_a_hair_above_the_plans_mg_per_kg_is_not_met_and_shown_above(policies):
    found = criterion(dose_chart(2.0, kg=16.6), policies, "dose-per-kg")             # 0.12048…
    assert found.status == NOT_MET and found.evidence[0].value_text == "0.1205"


def test_quantity_limits_per_day_and_per_30_days_are_exact(policies):
    spec = lambda quantity, threshold: {"type": "dose_limit", "quantity": quantity, "op": "<=", "threshold": threshold}  # noqa: E731
    assert judge(dose_limit, spec("doses_per_day", 2), dose_chart(0.9, per_day=3), policies).status == NOT_MET
    assert judge(dose_limit, spec("ml_per_30_days", 6), dose_chart(1.0), policies).status == MET      # 0.2 mL/day
    assert judge(dose_limit, spec("ml_per_30_days", 6), dose_chart(1.01), policies).status == NOT_MET
    assert judge(dose_limit, spec("vials_per_30_days", 2), dose_chart(1.0), policies).status == MET   # 6 mL: 2 vials
    three = judge(dose_limit, spec("vials_per_30_days", 2), dose_chart(1.5), policies)              # 9 mL: 3 vials
    assert three.status == NOT_MET and three.evidence[0].value == 3
    one = judge(dose_limit, spec("vials_per_30_days", 0.5), dose_chart(0.1), policies)              # a vial lasts 30 days
    assert one.evidence[0].value == 1
    daily = judge(dose_limit, spec("mg_per_kg_per_day", 0.24), dose_chart(1.872), policies)         # 0.12 × 2
    assert daily.status == MET


def test_a_limit_the_order_cannot_show_is_unknown_with_why(policies):
    spec = {"type": "dose_limit", "quantity": "mg_per_kg_per_dose", "op": "<=", "threshold": 0.12}
    no_weight = dose_chart(0.9).drop("Observation/wt-2025-02")
    found = judge(dose_limit, spec, no_weight, policies)
    assert found.status == UNKNOWN and "weight" in found.explanation
    found = judge(dose_limit, {**spec, "quantity": "doses_per_day", "threshold": 2}, dose_chart(0.9, per_day=None), policies)
    assert found.status == UNKNOWN and "how often" in found.explanation


# ------------------------------------------------------------------------- medication categories as data

def _label_with(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_LABEL_FILE.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _policy_with(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    edit(data)
    (tmp_path / "policies").mkdir(exist_ok=True)
    path = tmp_path / "policies" / EXAMPLE.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_category_defined_in_the_label_file_can_be_named_by_a_policy(tmp_path):
    label = _label_with(tmp_path, lambda d: d["medication_categories"].append(
        {"id": "gnrh-agonist", "title": "GnRH agonists", "names": ["leuprolide", "lupron", "triptorelin"]}))
    rule = {"id": "puberty-suppression", "kind": "not-medically-necessary", "role": "combination",
            "title": "Use with puberty suppression", "match": [{"medication_categories": ["gnrh-agonist"]}]}
    policy = _policy_with(tmp_path, lambda d: [v["exclusions"].append(rule) for v in d["versions"][:1]])
    policies = policy_set(policy, label_file=label)
    chart = quill_boy().medication("lupron-1", "Lupron Depot-Ped 11.25 mg IM every 3 months")
    decision = evaluate(build_record(resources_from_bundle(chart.bundle()), chart.order, TODAY,
                                     categories=policies.label.medication_categories), policies, TODAY)
    assert [e.id for e in decision.exclusions] == ["puberty-suppression"] and decision.determination == "does-not-meet"


def test_a_category_no_label_defines_is_refused_when_the_policies_load(tmp_path):
    policy = _policy_with(tmp_path, lambda d: d["versions"][0]["exclusions"][0]["match"][0].update(
        medication_categories=["growth-hormone"]))
    with pytest.raises(PolicyError, match="unknown medication category 'growth-hormone'"):
        policy_set(policy)
    label = _label_with(tmp_path, lambda d: d["interactions"][0].update(medication_category="insulins"))
    with pytest.raises(PolicyError, match="interactions\\[0\\].medication_category: unknown medication category"):
        load_label(label)


def test_the_replacement_names_of_the_steroid_rule_are_data(tmp_path):
    chart = laron_boy()
    chart.add({"resourceType": "MedicationStatement", "id": "hc-1", "status": "active",
               "medicationCodeableConcept": {"text": "Hydrocortisone 5 mg tablet"}, "subject": PATIENT_REF,
               "effectivePeriod": {"start": "2023-01-10"},
               "dosage": [{"text": "5 mg by mouth three times a day",
                           "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]}}]})
    shipped = policy_set()
    assert not shipped.label.medication_categories.get("systemic-corticosteroid").is_replacement("Prednisolone")
    decision = chart.decide(shipped)
    assert not [e for e in decision.exclusions if "corticosteroid" in e.title.lower()]
    label = _label_with(tmp_path, lambda d: d["medication_categories"][2].update(replacement_names=["alkindi"]))
    changed = policy_set(label_file=label)
    decision = evaluate(build_record(resources_from_bundle(chart.bundle()), chart.order, TODAY,
                                     categories=changed.label.medication_categories), changed, TODAY)
    assert [e for e in decision.exclusions if "corticosteroid" in e.title.lower()]


def test_the_example_policy_is_kept_out_of_the_production_folder():
    assert not (DEFAULT_POLICY_DIR / EXAMPLE.name).exists()
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.startswith("# ILLUSTRATIVE PAYER — NOT A REAL PLAN.") and "payer.example" in text
